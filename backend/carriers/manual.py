"""The built-in carrier: Storeline issues its own tracking numbers (SL + 12 digits + a mod-10 check digit)."""
from __future__ import annotations

import secrets

from backend.carriers.base import CarrierShipment, LabelData, PackageInfo, service_name


def check_digit(digits: str) -> str:
    """Luhn check digit, so a mistyped tracking number is caught at a scan or a search."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def valid(tracking: str) -> bool:
    body = tracking[2:]
    return tracking.startswith("SL") and len(body) == 13 and body.isdigit() and check_digit(body[:-1]) == body[-1]


class ManualCarrier:
    name = "manual"

    def create_shipment(self, package: PackageInfo) -> CarrierShipment:
        digits = "".join(secrets.choice("0123456789") for _ in range(12))
        tracking = f"SL{digits}{check_digit(digits)}"
        return CarrierShipment(tracking=tracking, label=self.label_data(package, tracking))

    def label_data(self, package: PackageInfo, tracking: str) -> LabelData:
        return LabelData(carrier="Storeline", service=service_name(package.delivery_method), barcode=tracking)
