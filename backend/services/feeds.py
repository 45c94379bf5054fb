"""Stock feeds from ERP, WMS or POS: snapshot or delta levels, validated row by row, applied in ONE transaction.

A feed sets on hand (snapshot) or moves it (delta), optionally with a row's own safety stock and holdback, and
clears a `blocked` flag. Reservations are kept; a position left with less on hand than reserved raises a
`stock_shortfall` exception. Every changed position gets a StockMovement (cause "feed", ref = the feed id) and
the feed one `stock.fed` event, so each change is traceable to the feed that made it.

Speed: rows are validated in plain Python; on PostgreSQL the keys and new values travel by COPY into temporary
tables and land with one INSERT ... ON CONFLICT DO UPDATE; on SQLite by executemany. Only changed positions are
written.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

from sqlmodel import Session

from backend import events
from backend.clock import now
from backend.db import is_sqlite
from backend.ids import new_id
from backend.services import inventory
from shared.errors import RejectedRow
from shared.inventory import FeedResult

_IN_LIMIT = 2000  # above this many distinct codes, read the whole table rather than an IN list

# (on_hand, reserved, blocked, safety_stock, holdback) of a position before the feed
_Old = tuple[int, int, bool, int | None, int | None]


def _whole(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return None
    return None


def apply_levels(session: Session, mode: str, rows: Sequence[Any], actor: str | None) -> FeedResult:
    """Validate every row, apply the good ones in one transaction, commit, and list the bad ones."""
    if mode not in ("snapshot", "delta"):
        from backend.errors import DomainError

        raise DomainError("invalid_mode", f"mode must be snapshot or delta, not {mode!r}", status=422)
    delta_mode = mode == "delta"
    field = "delta" if delta_mode else "on_hand"
    bad: list[RejectedRow] = []
    cand: list[tuple[int, str, str, int, int | None, int | None]] = []
    for i, raw in enumerate(rows, start=1):
        problem = None
        if type(raw) is not dict:
            bad.append(RejectedRow(row=i, code="invalid_row", message="each row must be an object"))
            continue
        loc, sku, val = raw.get("location"), raw.get("sku"), raw.get(field)
        if loc is None or sku is None or val is None or loc == "" or sku == "" or val == "":
            missing = [k for k, v in (("location", loc), ("sku", sku), (field, val)) if v is None or v == ""]
            hint = "" if field in raw else f" (a {mode} feed needs {field} on every row)"
            bad.append(RejectedRow(row=i, code="missing_field", key=_key(loc, sku),
                                   message=f"{', '.join(missing)} missing{hint}"))
            continue
        if not isinstance(loc, str) or not isinstance(sku, str):
            bad.append(RejectedRow(row=i, code="invalid_row", message="location and sku must be strings"))
            continue
        v = _whole(val)
        ss = hb = None
        if v is None:
            problem = ("invalid_row", f"{field} must be a whole number, not {val!r}")
        elif not delta_mode and v < 0:
            problem = ("negative_on_hand", f"on_hand must be 0 or more, not {v}")
        else:
            for name in ("safety_stock", "holdback"):
                x = raw.get(name)
                if x is None or x == "":
                    continue
                w = _whole(x)
                if w is None or w < 0:
                    problem = ("invalid_row", f"{name} must be a whole number 0 or more, not {x!r}")
                    break
                if name == "safety_stock":
                    ss = w
                else:
                    hb = w
        if problem:
            bad.append(RejectedRow(row=i, code=problem[0], message=problem[1], key=_key(loc, sku)))
            continue
        cand.append((i, loc.strip(), sku.strip(), v, ss, hb))

    locs = _known(session, "location", "code", {c[1] for c in cand})
    skus = _known(session, "product", "sku", {c[2] for c in cand})
    known: list[tuple[int, str, str, int, int | None, int | None]] = []
    for c in cand:
        if c[1] not in locs:
            bad.append(RejectedRow(row=c[0], code="unknown_location", key=_key(c[1], c[2]),
                                   message=f"location {c[1]} is not a known location"))
        elif c[2] not in skus:
            bad.append(RejectedRow(row=c[0], code="unknown_sku", key=_key(c[1], c[2]),
                                   message=f"SKU {c[2]} is not in the catalogue"))
        else:
            known.append(c)

    pg = not is_sqlite(session.get_bind())
    keys = list(dict.fromkeys((c[1], c[2]) for c in known))
    old = _read(session, keys, lock=delta_mode, pg=pg)

    # Apply the rows in order against running values (a delta that would go below 0 is refused on its own).
    new: dict[tuple[str, str], list[Any]] = {}
    applied = 0
    for i, loc, sku, v, ss, hb in known:
        k = (loc, sku)
        cur = new.get(k)
        if cur is None:
            o = old.get(k)
            cur = [o[0], o[3], o[4]] if o else [0, None, None]
        value = cur[0] + v if delta_mode else v
        if value < 0:
            bad.append(RejectedRow(row=i, code="below_zero", key=_key(loc, sku),
                                   message=f"delta {v} would take {sku} at {loc} below 0 (on hand {cur[0]})"))
            continue
        new[k] = [value, ss if ss is not None else cur[1], hb if hb is not None else cur[2]]
        applied += 1

    changed = []  # (location, sku, on_hand, safety_stock, holdback, on_hand_delta)
    for k, (oh, ss, hb) in new.items():
        o = old.get(k)
        if o is None or o[0] != oh or o[2] or o[3] != ss or o[4] != hb:
            changed.append((k[0], k[1], oh, ss, hb, oh - (o[0] if o else 0)))
    feed_id = new_id("feed")
    at = now()
    if changed:
        _write(session, changed, delta_mode, old, pg, at)
        _movements(session, changed, feed_id, actor, pg, at)
    shortfalls = inventory.raise_shortfalls(
        session, [(loc, sku, oh, old[(loc, sku)][1]) for loc, sku, oh, *_ in changed if (loc, sku) in old])
    events.record(session, "stock.fed", "feed", feed_id, actor=actor, data={
        "mode": mode, "rows": len(rows), "applied": applied, "changed": len(changed), "rejected": len(bad),
        "shortfalls": shortfalls, "locations": sorted({c[0] for c in changed})[:50]})
    inventory.retry_backorders(session, _more_atp(changed, old))
    session.commit()
    bad.sort(key=lambda r: r.row)
    return FeedResult(applied=applied, rejected=bad, changed=len(changed), feed_id=feed_id)


def _key(loc: Any, sku: Any) -> str | None:
    return f"{loc}/{sku}" if isinstance(loc, str) and isinstance(sku, str) else None


def _more_atp(changed: Iterable[tuple], old: dict[tuple[str, str], _Old]) -> set[str]:
    """SKUs whose ATP may have grown: more on hand, unblocked, or less set aside."""
    out = set()
    for loc, sku, oh, ss, hb, _ in changed:
        o = old.get((loc, sku))
        if o is None:
            if oh > 0:
                out.add(sku)
        elif oh > o[0] or o[2] or (o[3] or 0) > (ss or 0) or (o[4] or 0) > (hb or 0) or \
                (o[3] is not None and ss is None) or (o[4] is not None and hb is None):
            out.add(sku)
    return out


def _known(session: Session, table: str, column: str, wanted: set[str]) -> set[str]:
    if not wanted:
        return set()
    conn = session.connection().connection.driver_connection
    cur = conn.cursor()
    try:
        if len(wanted) > _IN_LIMIT:
            cur.execute(f"SELECT {column} FROM {table}")  # noqa: S608 - fixed names
            return {r[0] for r in cur.fetchall()} & wanted
        ph = "?" if is_sqlite(session.get_bind()) else "%s"
        items = list(wanted)
        cur.execute(f"SELECT {column} FROM {table} WHERE {column} IN ({', '.join([ph] * len(items))})",  # noqa: S608
                    items)
        return {r[0] for r in cur.fetchall()}
    finally:
        cur.close()


def _read(session: Session, keys: list[tuple[str, str]], *, lock: bool, pg: bool) -> dict[tuple[str, str], _Old]:
    """The current positions of these keys (locked for the transaction when `lock`, PostgreSQL only: SQLite
    already holds the one write lock)."""
    if not keys:
        return {}
    conn = session.connection().connection.driver_connection
    cur = conn.cursor()
    cols = "i.location, i.sku, i.on_hand, i.reserved, i.blocked, i.safety_stock, i.holdback"
    try:
        if pg:
            cur.execute("CREATE TEMP TABLE feed_keys (location varchar(40), sku varchar(40)) ON COMMIT DROP")
            with cur.copy("COPY feed_keys (location, sku) FROM STDIN") as cp:
                for k in keys:
                    cp.write_row(k)
            cur.execute("ANALYZE feed_keys")
            sql = (f"SELECT {cols} FROM inventory i JOIN feed_keys k ON k.location = i.location AND k.sku = i.sku"
                   + (" ORDER BY i.location, i.sku FOR UPDATE OF i" if lock else ""))
            cur.execute(sql)
            rows = cur.fetchall()
            cur.execute("DROP TABLE feed_keys")
        else:
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS feed_keys (location TEXT, sku TEXT)")
            cur.execute("DELETE FROM temp.feed_keys")
            cur.executemany("INSERT INTO temp.feed_keys (location, sku) VALUES (?, ?)", keys)
            cur.execute(f"SELECT {cols} FROM inventory i JOIN temp.feed_keys k"
                        " ON k.location = i.location AND k.sku = i.sku")
            rows = cur.fetchall()
            cur.execute("DELETE FROM temp.feed_keys")
    finally:
        cur.close()
    return {(r[0], r[1]): (r[2], r[3], bool(r[4]), r[5], r[6]) for r in rows}


_UPSERT_SET = ("safety_stock = excluded.safety_stock, holdback = excluded.holdback, blocked = excluded.blocked,"
               " updated_at = excluded.updated_at")


def _write(session: Session, changed: list[tuple], delta_mode: bool, old: dict, pg: bool, at) -> None:  # noqa: ANN001
    """Upsert the changed positions. Snapshot rows set on hand; delta rows add their net delta to the stored
    value (the rows were locked when read, and a row another feed inserted meanwhile still adds up)."""
    on_hand = "inventory.on_hand + excluded.on_hand" if delta_mode else "excluded.on_hand"
    upsert = (f"ON CONFLICT (location, sku) DO UPDATE SET on_hand = {on_hand}, {_UPSERT_SET}")
    if delta_mode:
        values = [(loc, sku, d if (loc, sku) in old else oh, ss, hb) for loc, sku, oh, ss, hb, d in changed]
    else:
        values = [(loc, sku, oh, ss, hb) for loc, sku, oh, ss, hb, _ in changed]
    conn = session.connection().connection.driver_connection
    cur = conn.cursor()
    try:
        if pg:
            cur.execute("CREATE TEMP TABLE feed_new (location varchar(40), sku varchar(40), on_hand integer,"
                        " safety_stock integer, holdback integer) ON COMMIT DROP")
            with cur.copy("COPY feed_new FROM STDIN") as cp:
                for v in values:
                    cp.write_row(v)
            cur.execute(
                "INSERT INTO inventory (location, sku, on_hand, reserved, safety_stock, holdback, blocked, updated_at)"
                " SELECT location, sku, on_hand, 0, safety_stock, holdback, false, %s FROM feed_new"
                f" ORDER BY location, sku {upsert}", (at,))
            cur.execute("DROP TABLE feed_new")
        else:
            ts = at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
            cur.executemany(
                "INSERT INTO inventory (location, sku, on_hand, reserved, safety_stock, holdback, blocked, updated_at)"
                f" VALUES (?, ?, ?, 0, ?, ?, 0, '{ts}') {upsert}", values)
    finally:
        cur.close()


def _movements(session: Session, changed: list[tuple], feed_id: str, actor: str | None, pg: bool, at) -> None:  # noqa: ANN001
    conn = session.connection().connection.driver_connection
    cur = conn.cursor()
    try:
        if pg:
            with cur.copy("COPY stockmovement (at, location, sku, on_hand_delta, reserved_delta, cause, ref, actor)"
                          " FROM STDIN") as cp:
                for loc, sku, *_, d in changed:
                    cp.write_row((at, loc, sku, d, 0, "feed", feed_id, actor))
        else:
            ts = at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
            cur.executemany("INSERT INTO stockmovement (at, location, sku, on_hand_delta, reserved_delta, cause, ref,"
                            " actor) VALUES (?, ?, ?, ?, 0, 'feed', ?, ?)",
                            [(ts, loc, sku, d, feed_id, actor) for loc, sku, *_, d in changed])
    finally:
        cur.close()
