"""Carrier documents: a label per package and a packing slip per order, read back from the PDF as a carrier's
scanner and a person would."""
from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from pypdf import PdfReader

from tests.conftest import login
from tests.nodes import helpers as h

SHIP_TO = {"zip": "12207", "name": "Ada Lovelace", "address": "12 Elm Street, Albany NY"}


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _packed_at_s1(client, hq, integration) -> tuple[dict, str]:
    """An order for S1 (the only SKU-2 left), and a package for it as the store's pack step makes one."""
    h.load(client, hq, integration)
    h.stock(client, integration, sku="SKU-2", W1=0)
    o = h.order(client, integration, "DOC-1", qty=2, sku="SKU-2", ship_to=SHIP_TO)
    assert [x[0] for x in h.allocations(o)] == ["S1"]
    from backend.db import session_scope
    from backend.ids import new_id
    from backend.models import Package
    from backend.services import documents

    with session_scope() as s:
        pkg = Package(id=new_id("pkg"), task_id=None, order_id=o["id"], location="S1", box="M",
                      lines=[{"line_id": "1", "sku": "SKU-2", "quantity": 2}])
        s.add(pkg)
        documents.on_packed(s, [pkg], actor="s1-ana")
        s.commit()
        return o, pkg.id


def test_label_and_packing_slip_read_back(client, hq, integration):
    from backend.carriers.manual import valid

    o, pkg_id = _packed_at_s1(client, hq, integration)
    ana, cai = login(client, "s1-ana", "1111"), login(client, "s2-cai", "4444")
    r = client.get(f"/api/v1/packages/{pkg_id}/label.pdf", headers=ana)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = _text(r.content)
    tracking = next(w for w in text.split() if w.startswith("SL"))
    assert valid(tracking), "the manual carrier's tracking number carries a check digit"
    for expected in ("Ada Lovelace", "12 Elm Street", "Albany NY", "ZIP 12207", "GROUND", "Weight: 1.20 kg",
                     f"Tracking: {tracking}", "Order DOC-1", "Albany Central", "Package 1 of 1"):
        assert expected in text, (expected, text)
    assert client.get(f"/api/v1/packages/{pkg_id}/label.pdf", headers=cai).status_code == 403
    assert client.get("/api/v1/packages/pkg_nope/label.pdf", headers=hq).status_code == 404
    assert client.get(f"/api/v1/packages/{pkg_id}/label.pdf").status_code == 401
    again = _text(client.get(f"/api/v1/packages/{pkg_id}/label.pdf", headers=hq).content)
    assert f"Tracking: {tracking}" in again, "booked once: the label prints the same number every time"

    r = client.get(f"/api/v1/orders/{o['id']}/packing-slip.pdf", headers=ana)
    assert r.status_code == 200, r.text
    slip = _text(r.content)
    for expected in ("Packing slip", "Order DOC-1", "Ada Lovelace", "12 Elm Street", "SKU-2", "Rain jacket M",
                     "Units: 2", tracking, "Shipped from: Albany Central (S1)"):
        assert expected in slip, (expected, slip)
    assert client.get(f"/api/v1/orders/{o['id']}/packing-slip.pdf", headers=cai).status_code == 404
    assert client.get(f"/api/v1/orders/{o['id']}/packing-slip.pdf", headers=hq).status_code == 200


def test_label_barcode_decodes_to_the_tracking_number(client, hq, integration, tmp_path):
    pyzbar = pytest.importorskip("pyzbar.pyzbar", reason="pyzbar (and Debian's libzbar0) are not installed")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (Debian's poppler-utils) is not installed to rasterise the PDF")
    from PIL import Image

    _o, pkg_id = _packed_at_s1(client, hq, integration)
    pdf = client.get(f"/api/v1/packages/{pkg_id}/label.pdf", headers=hq).content
    (tmp_path / "label.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "300", "-png", "-singlefile", str(tmp_path / "label.pdf"),
                    str(tmp_path / "label")], check=True, capture_output=True)
    codes = pyzbar.decode(Image.open(tmp_path / "label.png"))
    tracking = next(w for w in _text(pdf).split() if w.startswith("SL"))
    assert [(c.type, c.data.decode()) for c in codes] == [("CODE128", tracking)]


def test_carrier_adapters_follow_the_protocol():
    from backend.carriers import get_carrier
    from backend.carriers.base import Address, Carrier, PackageInfo
    from backend.carriers.manual import check_digit, valid

    carrier = get_carrier("manual")
    assert isinstance(carrier, Carrier) and get_carrier("unknown-carrier") is carrier
    info = PackageInfo(package_id="pkg_1", order_id="ord_1", order_number="W-1", delivery_method="next_day",
                       ship_from=Address(name="W1"), ship_to=Address(name="Ada", zip="12207"))
    a, b = carrier.create_shipment(info), carrier.create_shipment(info)
    assert a.tracking != b.tracking and valid(a.tracking) and a.label.service == "NEXT DAY"
    assert a.label.barcode == a.tracking
    assert check_digit("7992739871") == "3"  # the textbook Luhn example
    broken = a.tracking[:-1] + str((int(a.tracking[-1]) + 1) % 10)
    assert not valid(broken)
