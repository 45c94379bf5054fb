"""The carrier adapter interface: whoever moves a package gives it a tracking number and what its label shows.

Adapters know nothing of the database: they get a `PackageInfo` and answer a `CarrierShipment`. The built-in
`manual` adapter issues Storeline's own tracking numbers (the retailer hands packages to a carrier with its own
labels); an adapter for a carrier's API implements the same Protocol and is registered in `backend.carriers`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Address:
    name: str | None = None
    lines: tuple[str, ...] = ()
    zip: str | None = None
    lat: float | None = None
    lon: float | None = None

    def text_lines(self) -> list[str]:
        out = [x for x in (self.name, *self.lines) if x]
        if self.zip:
            out.append(f"ZIP {self.zip}")
        if not out and self.lat is not None and self.lon is not None:
            out.append(f"{self.lat:.4f}, {self.lon:.4f}")
        return out


@dataclass(frozen=True)
class PackageInfo:
    package_id: str
    order_id: str
    order_number: str
    delivery_method: str  # same_day | next_day | standard | pickup
    ship_from: Address
    ship_to: Address
    weight_kg: float | None = None
    index: int = 1  # package i of n in the order at this location
    count: int = 1


@dataclass(frozen=True)
class LabelData:
    carrier: str
    service: str  # what the label prints as the service, e.g. "NEXT DAY"
    barcode: str  # the value the Code 128 barcode encodes (usually the tracking number)
    extra: dict[str, Any] = field(default_factory=dict)  # carrier-specific (routing codes, ...)


@dataclass(frozen=True)
class CarrierShipment:
    tracking: str
    label: LabelData


@runtime_checkable
class Carrier(Protocol):
    name: str

    def create_shipment(self, package: PackageInfo) -> CarrierShipment:
        """Book the package with the carrier: its tracking number and label data."""
        ...

    def label_data(self, package: PackageInfo, tracking: str) -> LabelData:
        """What the label of an already booked package shows (labels are re-rendered on demand)."""
        ...


SERVICES = {"same_day": "SAME DAY", "next_day": "NEXT DAY", "standard": "GROUND", "pickup": "STORE PICKUP"}


def service_name(delivery_method: str) -> str:
    return SERVICES.get(delivery_method, delivery_method.upper())
