"""Carrier documents: a shipping label per package and a packing slip per order (and location), as PDF.

At pack, `on_packed(session, packages)` books each new package with its carrier adapter (`backend.carriers`),
which gives it a tracking number. The PDFs are rendered on demand from the database (the same package always
renders the same label), so nothing needs storing and a lost label is simply printed again.
"""
from __future__ import annotations

import io
from collections import defaultdict
from datetime import datetime

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import inch, letter
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from sqlmodel import Session, col, select

from backend import events
from backend.carriers import get_carrier
from backend.carriers.base import Address, LabelData, PackageInfo
from backend.clock import now
from backend.errors import DomainError, NotFound
from backend.models import Allocation, Location, Order, OrderLine, Package, Product
from backend.principal import Principal
from shared.enums import Role

LABEL_SIZE = (4 * inch, 6 * inch)
SLIP_STATES = ("reserved", "released", "picked", "packed", "fulfilled")


# ---------------------------------------------------------------------------------------- gathering data
def _address_from_location(loc: Location | None) -> Address:
    if loc is None:
        return Address()
    return Address(name=loc.name, lines=tuple(x.strip() for x in (loc.address or "").split(",") if x.strip()),
                   lat=loc.lat, lon=loc.lon)


def ship_to(session: Session, order: Order) -> Address:
    st = order.ship_to or {}
    if not st and order.pickup_location:
        store = session.get(Location, order.pickup_location)
        a = _address_from_location(store)
        return Address(name=f"Store pickup: {a.name or order.pickup_location}", lines=a.lines, lat=a.lat, lon=a.lon)
    lines = tuple(x.strip() for x in str(st.get("address") or "").split(",") if x.strip())
    return Address(name=st.get("name"), lines=lines, zip=st.get("zip"), lat=st.get("lat"), lon=st.get("lon"))


def package_info(session: Session, pkg: Package) -> PackageInfo:
    order = session.get(Order, pkg.order_id)
    if order is None:
        raise NotFound("unknown_order", f"order {pkg.order_id} does not exist", {"order_id": pkg.order_id})
    q = select(Package.id).where(Package.order_id == pkg.order_id, Package.location == pkg.location)
    for column, value in ((Package.task_id, pkg.task_id), (Package.shipment_ref, pkg.shipment_ref)):
        q = q.where(col(column).is_(None) if value is None else column == value)
    siblings = list(session.exec(q.order_by(Package.created_at, Package.id)).all())
    index = siblings.index(pkg.id) + 1 if pkg.id in siblings else 1
    return PackageInfo(package_id=pkg.id, order_id=order.id, order_number=order.external_id,
                       delivery_method=order.delivery_method,
                       ship_from=_address_from_location(session.get(Location, pkg.location)),
                       ship_to=ship_to(session, order), weight_kg=_weight(session, pkg), index=index,
                       count=max(1, len(siblings)))


def _weight(session: Session, pkg: Package) -> float | None:
    if pkg.weight_kg is not None:
        return pkg.weight_kg
    content = [x for x in (pkg.lines or []) if isinstance(x, dict) and x.get("sku")]
    if not content:
        return None
    weights = {p.sku: p.weight_kg for p in session.exec(select(Product).where(
        col(Product.sku).in_({x["sku"] for x in content})))}
    return round(sum(weights.get(x["sku"], 0.0) * int(x.get("quantity") or 0) for x in content), 3)


# ---------------------------------------------------------------------------------------------- booking
def book(session: Session, pkg: Package, actor: str | None = None) -> str:
    """Give the package a tracking number from its carrier adapter, once. No commit."""
    if pkg.tracking:
        return pkg.tracking
    carrier = get_carrier(pkg.carrier)
    shipment = carrier.create_shipment(package_info(session, pkg))
    pkg.tracking = shipment.tracking
    pkg.carrier = pkg.carrier or carrier.name
    session.add(pkg)
    events.record(session, "package.booked", "package", pkg.id, order_id=pkg.order_id, location=pkg.location,
                  actor=actor, data={"carrier": pkg.carrier, "tracking": pkg.tracking})
    return pkg.tracking


def on_packed(session: Session, packages: list[Package], actor: str | None = None) -> None:
    """Fulfilment calls this at pack: each new package is booked (tracking number) so its label can print.
    No commit."""
    if packages:
        session.flush()
    for pkg in packages:
        book(session, pkg, actor)


# -------------------------------------------------------------------------------------------- rendering
def render_label(info: PackageInfo, tracking: str, label: LabelData) -> bytes:
    """A 4 x 6 inch label: from, ship to, service, weight, a Code 128 barcode of the tracking number."""
    buf = io.BytesIO()
    w, h = LABEL_SIZE
    c = Canvas(buf, pagesize=LABEL_SIZE, invariant=1)
    c.setTitle(f"Label {tracking}")
    m = 6 * mm
    y = h - m - 8
    c.setFont("Helvetica", 7)
    c.drawString(m, y, "FROM")
    y -= 9
    c.setFont("Helvetica", 8)
    for line in info.ship_from.text_lines()[:3]:
        c.drawString(m, y, line[:60])
        y -= 9
    c.line(m, y, w - m, y)
    y -= 12
    c.setFont("Helvetica", 7)
    c.drawString(m, y, "SHIP TO")
    y -= 14
    c.setFont("Helvetica-Bold", 12)
    for line in info.ship_to.text_lines()[:5] or ["(no address)"]:
        c.drawString(m + 4, y, line[:40])
        y -= 15
    y -= 4
    c.line(m, y, w - m, y)
    y -= 26
    c.setFont("Helvetica-Bold", 22)
    c.drawString(m, y, label.service)
    c.setFont("Helvetica", 9)
    weight = f"{info.weight_kg:.2f} kg" if info.weight_kg is not None else "weight not given"
    c.drawRightString(w - m, y + 10, f"Weight: {weight}")
    c.drawRightString(w - m, y - 2, f"Package {info.index} of {info.count}")
    y -= 14
    c.drawString(m, y, f"Carrier: {label.carrier}")
    y -= 6
    c.line(m, y, w - m, y)
    bar = Code128(label.barcode, barHeight=0.9 * inch, barWidth=0.016 * inch, humanReadable=False)
    bx = max(m, (w - bar.width) / 2)
    bar.drawOn(c, bx, y - 0.9 * inch - 12)
    y -= 0.9 * inch + 28
    c.setFont("Helvetica-Bold", 12)
    c.drawCentredString(w / 2, y, f"Tracking: {tracking}")
    y -= 16
    c.setFont("Helvetica", 8)
    c.drawString(m, y, f"Order {info.order_number}")
    c.drawRightString(w - m, y, info.package_id)
    c.showPage()
    c.save()
    return buf.getvalue()


def render_packing_slip(order: Order, to: Address, location: Location | None,
                        rows: list[tuple[str, str, str, int]], packages: list[Package], at: datetime) -> bytes:
    """A letter-size slip: order, ship to, the lines packed (line, SKU, name, quantity), the packages."""
    buf = io.BytesIO()
    w, h = letter
    c = Canvas(buf, pagesize=letter, invariant=1)
    c.setTitle(f"Packing slip {order.external_id}")
    m = 18 * mm
    y = h - m
    c.setFont("Helvetica-Bold", 18)
    c.drawString(m, y, "Packing slip")
    c.setFont("Helvetica", 10)
    c.drawRightString(w - m, y, f"Order {order.external_id}")
    y -= 16
    c.drawRightString(w - m, y, f"Printed {at.strftime('%Y-%m-%d %H:%M UTC')}")
    c.drawString(m, y, f"Channel: {order.channel}   Delivery: {order.delivery_method.replace('_', ' ')}")
    y -= 14
    if location is not None:
        c.drawString(m, y, f"Shipped from: {location.name} ({location.code})")
        y -= 14
    y -= 8
    c.setFont("Helvetica-Bold", 10)
    c.drawString(m, y, "Ship to")
    y -= 14
    c.setFont("Helvetica", 11)
    for line in to.text_lines() or ["(no address)"]:
        c.drawString(m + 8, y, line[:80])
        y -= 14
    y -= 12
    cols = [m, m + 40, m + 150, w - m - 60]
    c.setFont("Helvetica-Bold", 10)
    for x, title in zip(cols, ("Line", "SKU", "Item", "Qty"), strict=True):
        c.drawString(x, y, title)
    y -= 4
    c.line(m, y, w - m, y)
    y -= 14
    c.setFont("Helvetica", 10)
    for line_id, sku, name, qty in rows:
        if y < m + 60:
            c.showPage()
            y = h - m
            c.setFont("Helvetica", 10)
        c.drawString(cols[0], y, line_id[:8])
        c.drawString(cols[1], y, sku[:20])
        c.drawString(cols[2], y, name[:55])
        c.drawString(cols[3], y, str(qty))
        y -= 14
    y -= 4
    c.line(m, y, w - m, y)
    y -= 16
    c.drawString(m, y, f"Units: {sum(r[3] for r in rows)}   Packages: {len(packages)}")
    for p in packages:
        y -= 14
        if p.tracking:
            c.drawString(m + 8, y, f"{p.id}: {p.carrier or ''} {p.tracking}")
    c.showPage()
    c.save()
    return buf.getvalue()


# -------------------------------------------------------------------------------------- what the API serves
def _may_read(actor: Principal, code: str) -> None:
    """HQ and integrations: any location; store staff: their store; node keys: their locations."""
    actor.check_location(code)


def label_pdf(session: Session, package_id: str, actor: Principal) -> tuple[bytes, str]:
    """(PDF, tracking) for one package; a package without a tracking number is booked first (and committed)."""
    pkg = session.get(Package, package_id)
    if pkg is None:
        raise NotFound("unknown_package", f"package {package_id} does not exist", {"package_id": package_id})
    _may_read(actor, pkg.location)
    if not pkg.tracking:
        book(session, pkg, actor.username)
        session.commit()
    info = package_info(session, pkg)
    label = get_carrier(pkg.carrier).label_data(info, pkg.tracking or "")
    if pkg.carrier and label.carrier == "Storeline" and pkg.carrier.lower() != "manual":
        label = LabelData(carrier=pkg.carrier, service=label.service, barcode=label.barcode, extra=label.extra)
    return render_label(info, pkg.tracking or "", label), pkg.tracking or ""


def packing_slip_pdf(session: Session, order_id: str, actor: Principal, location: str | None = None) -> bytes:
    """The order's slip for one location: the caller's store for store staff, else `location` or all of them."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("unknown_order", f"order {order_id} does not exist", {"order_id": order_id})
    if actor.role in (Role.associate, Role.manager):
        if location not in (None, actor.store):
            actor.check_location(location)
        location = actor.store
    elif actor.role == Role.node:
        if location is None and len(actor.locations) == 1:
            location = next(iter(actor.locations))
        if location is None:
            raise DomainError("location_required", "name the location whose slip you want (?location=)", status=422)
    if location is not None:
        _may_read(actor, location)
    q = select(Allocation).where(Allocation.order_id == order.id, col(Allocation.state).in_(SLIP_STATES))
    if location is not None:
        q = q.where(Allocation.location == location)
    allocs = session.exec(q).all()
    if not allocs:
        where = f" at {location}" if location else ""
        raise NotFound("unknown_order", f"order {order.external_id} has nothing to pack{where}",
                       {"order_id": order_id, "location": location})
    lines = {ln.id: ln for ln in session.exec(select(OrderLine).where(OrderLine.order_id == order.id))}
    names = {p.sku: p.name for p in session.exec(select(Product).where(col(Product.sku).in_({a.sku for a in allocs})))}
    qty: dict[str, int] = defaultdict(int)
    for a in allocs:
        qty[a.line_pk] += a.quantity
    rows = sorted(((lines[pk].line_id, lines[pk].sku, names.get(lines[pk].sku, ""), n) for pk, n in qty.items()),
                  key=lambda r: (len(r[0]), r[0]))
    pq = select(Package).where(Package.order_id == order.id)
    if location is not None:
        pq = pq.where(Package.location == location)
    packages = list(session.exec(pq.order_by(Package.created_at, Package.id)))
    return render_packing_slip(order, ship_to(session, order), session.get(Location, location) if location else None,
                               rows, packages, now())
