"""Locations, products and users, upserted in bulk by their natural key. The demo seed uses these too."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.errors import Forbidden
from backend.models import Allocation, Barcode, Location, Product, StoreVersion, User
from backend.principal import Principal
from backend.security import hash_secret
from backend.services.bulk import validate_rows
from shared.enums import LIVE_ALLOCATION_STATES, LocationType, Role
from shared.errors import RejectedRow
from shared.masterdata import BulkResult, LocationIn, LocationOut, ProductIn, ProductOut, UserIn, UserOut


def upsert_locations(session: Session, rows: list[Any], actor: Principal) -> BulkResult:
    good, bad = validate_rows(LocationIn, rows, "code")
    existing = {loc.code: loc for loc in session.exec(select(Location).where(
        col(Location.code).in_([x.code for _, x in good])))} if good else {}
    for _, item in good:
        loc = existing.get(item.code)
        data = item.model_dump()
        data["type"] = item.type.value
        if loc is None:
            session.add(Location(**data))
            if item.type == LocationType.store:
                session.add(StoreVersion(location=item.code, version=0))
        else:
            for k, v in data.items():
                setattr(loc, k, v)
            loc.updated_at = now()
            session.add(loc)
        events.record(session, "location.upserted", "location", item.code, location=item.code,
                      actor=actor.username, data={"active": item.active})
    session.commit()
    return BulkResult(upserted=len(good), rejected=bad)


def open_allocation_count(session: Session, code: str) -> int:
    return session.exec(select(func.count()).select_from(Allocation).where(
        Allocation.location == code, col(Allocation.state).in_([s.value for s in LIVE_ALLOCATION_STATES]))).one()


def location_out(loc: Location) -> LocationOut:
    return LocationOut.model_validate(loc.model_dump(exclude={"updated_at"}))


def list_locations(session: Session, type_: str | None, active: bool | None, offset: int, limit: int):
    q = select(Location)
    if type_:
        q = q.where(Location.type == type_)
    if active is not None:
        q = q.where(Location.active == active)
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(Location.code).offset(offset).limit(limit)).all()
    return [location_out(x) for x in rows], total


def upsert_products(session: Session, rows: list[Any], actor: Principal) -> BulkResult:
    good, bad = validate_rows(ProductIn, rows, "sku")
    if not good:
        return BulkResult(upserted=0, rejected=bad)
    skus = [x.sku for _, x in good]
    # A barcode belongs to one product: refuse rows that would steal another product's barcode.
    claimed = {b.barcode: b.sku for b in session.exec(select(Barcode).where(
        col(Barcode.barcode).in_([c for _, x in good for c in x.barcodes])))}
    seen: dict[str, str] = {}
    accepted: list[ProductIn] = []
    for i, item in good:
        clash = next((c for c in item.barcodes if claimed.get(c, item.sku) != item.sku
                      or seen.get(c, item.sku) != item.sku), None)
        if clash:
            owner = claimed.get(clash) or seen[clash]
            bad.append(RejectedRow(row=i, code="duplicate_barcode", key=item.sku,
                                   message=f"barcode {clash} already belongs to SKU {owner}"))
            continue
        for c in item.barcodes:
            seen[c] = item.sku
        accepted.append(item)
    existing = {p.sku: p for p in session.exec(select(Product).where(col(Product.sku).in_(skus)))}
    session.exec(delete(Barcode).where(col(Barcode.sku).in_([x.sku for x in accepted])))
    for item in accepted:
        p = existing.get(item.sku)
        if p is None:
            session.add(Product(sku=item.sku, name=item.name, weight_kg=item.weight_kg, sku_class=item.sku_class,
                                active=item.active))
        else:
            p.name, p.weight_kg, p.sku_class, p.active, p.updated_at = (
                item.name, item.weight_kg, item.sku_class, item.active, now())
            session.add(p)
    session.flush()
    session.add_all([Barcode(barcode=c, sku=item.sku) for item in accepted for c in item.barcodes])
    events.record(session, "products.upserted", "product", accepted[0].sku if len(accepted) == 1 else "*",
                  actor=actor.username, data={"count": len(accepted)})
    session.commit()
    bad.sort(key=lambda r: r.row)
    return BulkResult(upserted=len(accepted), rejected=bad)


def product_out(p: Product, barcodes: list[str]) -> ProductOut:
    return ProductOut(sku=p.sku, name=p.name, barcodes=barcodes, weight_kg=p.weight_kg, sku_class=p.sku_class,
                      active=p.active)


def list_products(session: Session, q_: str | None, offset: int, limit: int):
    q = select(Product)
    if q_:
        like = f"%{q_.lower()}%"
        q = q.where(func.lower(Product.sku).like(like) | func.lower(Product.name).like(like))
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(Product.sku).offset(offset).limit(limit)).all()
    codes: dict[str, list[str]] = {}
    for b in session.exec(select(Barcode).where(col(Barcode.sku).in_([p.sku for p in rows]))):
        codes.setdefault(b.sku, []).append(b.barcode)
    return [product_out(p, sorted(codes.get(p.sku, []))) for p in rows], total


def upsert_users(session: Session, rows: list[Any], actor: Principal) -> BulkResult:
    good, bad = validate_rows(UserIn, rows, "username")
    stores = {loc.code: loc.type for loc in session.exec(select(Location).where(
        col(Location.code).in_([x.store for _, x in good if x.store])))} if good else {}
    existing = {u.username: u for u in session.exec(select(User).where(
        col(User.username).in_([x.username for _, x in good])))} if good else {}
    applied = 0
    for i, item in good:
        problem = _user_problem(item, actor, stores, existing.get(item.username))
        if problem:
            bad.append(RejectedRow(row=i, code=problem[0], message=problem[1], key=item.username))
            continue
        secret = item.pin if item.role in (Role.associate, Role.manager) else item.password
        u = existing.get(item.username)
        if u is None:
            u = User(username=item.username, role=item.role.value, store=item.store, name=item.name,
                     secret_hash=hash_secret(secret), active=item.active)
        else:
            u.role, u.store, u.name, u.active, u.updated_at = item.role.value, item.store, item.name, item.active, now()
            if secret:
                u.secret_hash = hash_secret(secret)
        session.add(u)
        events.record(session, "user.upserted", "user", item.username, location=item.store, actor=actor.username,
                      data={"role": item.role.value})
        applied += 1
    session.commit()
    bad.sort(key=lambda r: r.row)
    return BulkResult(upserted=applied, rejected=bad)


def _user_problem(item: UserIn, actor: Principal, stores: dict[str, str],
                  current: User | None) -> tuple[str, str] | None:
    if actor.role == Role.manager:
        if item.role != Role.associate or item.store != actor.store:
            return "forbidden_role", f"a manager may only manage associates of store {actor.store}"
        if current is not None and (current.role != Role.associate.value or current.store != actor.store):
            return "forbidden_role", f"user {item.username} belongs to another store or role"
    if item.store and item.store not in stores:
        return "unknown_location", f"store {item.store} is not a known location"
    if item.store and stores[item.store] != LocationType.store.value:
        return "not_a_store", f"location {item.store} is a {stores[item.store]}, not a store"
    if current is None and item.role in (Role.associate, Role.manager) and not item.pin:
        return "missing_pin", f"new {item.role.value} {item.username} needs a pin"
    if current is None and item.role == Role.hq and not item.password:
        return "missing_password", f"new HQ user {item.username} needs a password"
    return None


def list_users(session: Session, actor: Principal, store: str | None) -> list[UserOut]:
    q = select(User)
    if actor.role == Role.manager:
        q = q.where(User.store == actor.store)
    elif store:
        q = q.where(User.store == store)
    elif actor.role != Role.hq:
        raise Forbidden("forbidden_role", "only HQ may list every user")
    return [UserOut(username=u.username, role=Role(u.role), store=u.store, name=u.name, active=u.active)
            for u in session.exec(q.order_by(User.username))]
