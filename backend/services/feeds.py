"""Stock feeds from ERP, WMS or POS: snapshot or delta levels, validated row by row, applied in ONE transaction.

A feed sets on hand (snapshot) or moves it (delta), optionally with a row's own safety stock and holdback, and
clears a `blocked` flag. Reservations are kept; a position left with less on hand than reserved raises a
`stock_shortfall` exception. Every changed position gets a StockMovement (cause "feed", ref = the feed id) and
the feed one `stock.fed` event, so each change is traceable to the feed that made it.

Speed: rows are validated in plain Python; on PostgreSQL keys and new values travel by COPY into temporary
tables, existing positions change with one UPDATE ... FROM and new ones arrive with one INSERT ... ON CONFLICT;
on SQLite the same statements run through executemany. Only changed positions are written.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from backend import events
from backend.clock import now
from backend.db import is_sqlite
from backend.errors import DomainError
from backend.ids import new_id
from backend.services import inventory
from shared.errors import RejectedRow
from shared.inventory import FeedResult

_IN_LIMIT = 2000  # above this many distinct codes, read the whole table rather than an IN list
_OPTIONAL = ("safety_stock", "holdback")

# (on_hand, reserved, blocked, safety_stock, holdback) of a position before the feed
_Old = tuple[int, int, bool, int | None, int | None]
# (row number, location, sku, on_hand or delta, safety_stock, holdback)
_Row = tuple[int, str, str, int, int | None, int | None]
# (location, sku, new on_hand, safety_stock, holdback, on_hand delta, existed before)
_Change = tuple[str, str, int, int | None, int | None, int, bool]


def apply_levels(session: Session, mode: str, rows: Sequence[Any], actor: str | None) -> FeedResult:
    """Validate every row, apply the good ones in one transaction, commit, and list the bad ones."""
    if mode not in ("snapshot", "delta"):
        raise DomainError("invalid_mode", f"mode must be snapshot or delta, not {mode!r}", status=422)
    delta_mode = mode == "delta"
    cand, bad = _validate(rows, mode)
    locs = _known(session, "location", "code", {c[1] for c in cand})
    skus = _known(session, "product", "sku", {c[2] for c in cand})
    known: list[_Row] = []
    for c in cand:
        if c[1] not in locs:
            bad.append(RejectedRow(row=c[0], code="unknown_location", key=f"{c[1]}/{c[2]}",
                                   message=f"location {c[1]} is not a known location"))
        elif c[2] not in skus:
            bad.append(RejectedRow(row=c[0], code="unknown_sku", key=f"{c[1]}/{c[2]}",
                                   message=f"SKU {c[2]} is not in the catalogue"))
        else:
            known.append(c)

    pg = not is_sqlite(session.get_bind())
    old = _read(session, list(dict.fromkeys((c[1], c[2]) for c in known)), lock=delta_mode, pg=pg)

    # Apply the rows in order against running values (a delta that would go below 0 is refused on its own).
    new: dict[tuple[str, str], tuple[int, int | None, int | None]] = {}
    applied = 0
    for i, loc, sku, v, ss, hb in known:
        k = (loc, sku)
        cur = new.get(k)
        if cur is None:
            o = old.get(k)
            cur = (o[0], o[3], o[4]) if o is not None else (0, None, None)
        value = cur[0] + v if delta_mode else v
        if value < 0:
            bad.append(RejectedRow(row=i, code="below_zero", key=f"{loc}/{sku}",
                                   message=f"delta {v} would take {sku} at {loc} below 0 (on hand {cur[0]})"))
            continue
        new[k] = (value, cur[1] if ss is None else ss, cur[2] if hb is None else hb)
        applied += 1

    changed: list[_Change] = []
    for k, (oh, ss, hb) in new.items():
        o = old.get(k)
        if o is None:
            changed.append((k[0], k[1], oh, ss, hb, oh, False))
        elif o[0] != oh or o[2] or o[3] != ss or o[4] != hb:
            changed.append((k[0], k[1], oh, ss, hb, oh - o[0], True))
    feed_id = new_id("feed")
    at = now()
    if changed:
        _write(session, changed, delta_mode, pg, at)
        _movements(session, changed, feed_id, actor, pg, at)
    shortfalls = inventory.raise_shortfalls(
        session, [(c[0], c[1], c[2], old[(c[0], c[1])][1]) for c in changed
                  if c[6] and c[2] < old[(c[0], c[1])][1]])
    events.record(session, "stock.fed", "feed", feed_id, actor=actor, data={
        "mode": mode, "rows": len(rows), "applied": applied, "changed": len(changed), "rejected": len(bad),
        "shortfalls": shortfalls, "locations": sorted({c[0] for c in changed})[:50]})
    inventory.retry_backorders(session, _more_atp(changed, old))
    session.commit()
    bad.sort(key=lambda r: r.row)
    return FeedResult(applied=applied, rejected=bad, changed=len(changed), feed_id=feed_id)


# --- validation -------------------------------------------------------------------------------------------------

def _validate(rows: Sequence[Any], mode: str) -> tuple[list[_Row], list[RejectedRow]]:
    """Shape checks only (known codes are checked in bulk afterwards). The common row takes the fast path."""
    field = "delta" if mode == "delta" else "on_hand"
    negative_ok = mode == "delta"
    good: list[_Row] = []
    bad: list[RejectedRow] = []
    for i, raw in enumerate(rows, start=1):
        if type(raw) is dict:
            loc, sku, val = raw.get("location"), raw.get("sku"), raw.get(field)
            if (type(val) is int and type(loc) is str and type(sku) is str and loc and sku
                    and (negative_ok or val >= 0) and "safety_stock" not in raw and "holdback" not in raw):
                good.append((i, loc, sku, val, None, None))
                continue
        row, problem = _check_slowly(i, raw, mode, field)
        if row is not None:
            good.append(row)
        elif problem is not None:
            bad.append(problem)
    return good, bad


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


def _check_slowly(i: int, raw: Any, mode: str, field: str) -> tuple[_Row | None, RejectedRow | None]:
    if type(raw) is not dict:
        return None, RejectedRow(row=i, code="invalid_row", message="each row must be an object")
    loc, sku, val = raw.get("location"), raw.get("sku"), raw.get(field)
    key = f"{loc}/{sku}" if isinstance(loc, str) and isinstance(sku, str) else None
    missing = [k for k, v in (("location", loc), ("sku", sku), (field, val)) if v is None or v == ""]
    if missing:
        hint = "" if field in raw else f" (a {mode} feed needs {field} on every row)"
        return None, RejectedRow(row=i, code="missing_field", key=key, message=f"{', '.join(missing)} missing{hint}")
    if not isinstance(loc, str) or not isinstance(sku, str):
        return None, RejectedRow(row=i, code="invalid_row", message="location and sku must be strings")
    v = _whole(val)
    if v is None:
        return None, RejectedRow(row=i, code="invalid_row", key=key,
                                 message=f"{field} must be a whole number, not {val!r}")
    if mode == "snapshot" and v < 0:
        return None, RejectedRow(row=i, code="negative_on_hand", key=key, message=f"on_hand must be 0 or more, not {v}")
    extra: list[int | None] = []
    for name in _OPTIONAL:
        x = raw.get(name)
        w = None if x is None or x == "" else _whole(x)
        if x not in (None, "") and (w is None or w < 0):
            return None, RejectedRow(row=i, code="invalid_row", key=key,
                                     message=f"{name} must be a whole number 0 or more, not {x!r}")
        extra.append(w)
    return (i, loc, sku, v, extra[0], extra[1]), None


def _more_atp(changed: Iterable[_Change], old: dict[tuple[str, str], _Old]) -> set[str]:
    """SKUs whose ATP may have grown: more on hand, unblocked, or less set aside."""
    out = set()
    for loc, sku, oh, ss, hb, d, existed in changed:
        if not existed:
            if oh > 0:
                out.add(sku)
            continue
        o = old[(loc, sku)]
        if d > 0 or o[2] or (o[3] or 0) > (ss or 0) or (o[4] or 0) > (hb or 0) or \
                (o[3] is not None and ss is None) or (o[4] is not None and hb is None):
            out.add(sku)
    return out


# --- database ---------------------------------------------------------------------------------------------------

def _raw(session: Session):  # noqa: ANN202 - the DBAPI connection inside the session's transaction
    return session.connection().connection.driver_connection


def _known(session: Session, table: str, column: str, wanted: set[str]) -> set[str]:
    if not wanted:
        return set()
    cur = _raw(session).cursor()
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


def _copy_text(values: Iterable[Any]) -> str:
    """One field of PostgreSQL's COPY text format."""
    out = []
    for v in values:
        if v is None:
            out.append("\\N")
        elif isinstance(v, str):
            out.append(v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))
        else:
            out.append(str(v))
    return "\t".join(out)


def _n(v: int | None) -> str:
    return "\\N" if v is None else str(v)


def _copy(cur, sql: str, lines: Iterable[str]) -> None:  # noqa: ANN001
    """COPY ... FROM STDIN, in chunks of pre-formatted lines (location and SKU codes are known-safe)."""
    buf: list[str] = []
    with cur.copy(sql) as cp:
        for line in lines:
            buf.append(line)
            if len(buf) >= 20_000:
                cp.write("".join(buf))
                buf.clear()
        if buf:
            cp.write("".join(buf))


def _read(session: Session, keys: list[tuple[str, str]], *, lock: bool, pg: bool) -> dict[tuple[str, str], _Old]:
    """The current positions of these keys (locked for the transaction when `lock`, PostgreSQL only: SQLite
    already holds the one write lock)."""
    if not keys:
        return {}
    cur = _raw(session).cursor()
    cols = "i.location, i.sku, i.on_hand, i.reserved, i.blocked, i.safety_stock, i.holdback"
    try:
        if pg:
            cur.execute("CREATE TEMP TABLE feed_keys (location varchar(40), sku varchar(40)) ON COMMIT DROP")
            _copy(cur, "COPY feed_keys (location, sku) FROM STDIN", (f"{loc}\t{sku}\n" for loc, sku in keys))
            cur.execute(f"SELECT {cols} FROM inventory i JOIN feed_keys k ON k.location = i.location"
                        " AND k.sku = i.sku" + (" ORDER BY i.location, i.sku FOR UPDATE OF i" if lock else ""))
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


def _write(session: Session, changed: list[_Change], delta_mode: bool, pg: bool, at: datetime) -> None:
    """Write the changed positions. Existing rows: snapshot sets on hand, delta adds its net delta to the stored
    value (the rows were locked when read). New rows are inserted; one another feed inserted meanwhile is
    updated the same way."""
    on_hand = "inventory.on_hand + f.on_hand" if delta_mode else "f.on_hand"
    # Existing rows carry their net delta in delta mode; new rows their whole value (= the delta from 0).
    values = [(c[0], c[1], c[5] if delta_mode and c[6] else c[2], c[3], c[4], c[6]) for c in changed]
    cur = _raw(session).cursor()
    try:
        if pg:
            cur.execute("CREATE TEMP TABLE feed_new (location varchar(40), sku varchar(40), on_hand integer,"
                        " safety_stock integer, holdback integer, existed boolean) ON COMMIT DROP")
            _copy(cur, "COPY feed_new FROM STDIN",
                  (f"{loc}\t{sku}\t{oh}\t{_n(ss)}\t{_n(hb)}\t{'t' if e else 'f'}\n"
                   for loc, sku, oh, ss, hb, e in values))
            cur.execute(f"UPDATE inventory SET on_hand = {on_hand}, safety_stock = f.safety_stock,"
                        " holdback = f.holdback, blocked = false, updated_at = %s FROM feed_new f"
                        " WHERE f.existed AND inventory.location = f.location AND inventory.sku = f.sku", (at,))
            cur.execute("INSERT INTO inventory (location, sku, on_hand, reserved, safety_stock, holdback, blocked,"
                        " updated_at) SELECT location, sku, on_hand, 0, safety_stock, holdback, false, %s"
                        " FROM feed_new f WHERE NOT f.existed ORDER BY location, sku"
                        f" ON CONFLICT (location, sku) DO UPDATE SET on_hand = {on_hand.replace('f.', 'excluded.')},"
                        " safety_stock = excluded.safety_stock, holdback = excluded.holdback, blocked = false,"
                        " updated_at = excluded.updated_at", (at,))
            cur.execute("DROP TABLE feed_new")
        else:
            ts = at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
            cur.executemany(f"UPDATE inventory SET on_hand = {on_hand.replace('f.on_hand', '?')}, safety_stock = ?,"
                            f" holdback = ?, blocked = 0, updated_at = '{ts}' WHERE location = ? AND sku = ?",
                            [(oh, ss, hb, loc, sku) for loc, sku, oh, ss, hb, e in values if e])
            cur.executemany("INSERT INTO inventory (location, sku, on_hand, reserved, safety_stock, holdback, blocked,"
                            f" updated_at) VALUES (?, ?, ?, 0, ?, ?, 0, '{ts}') ON CONFLICT (location, sku) DO UPDATE"
                            f" SET on_hand = {on_hand.replace('f.', 'excluded.')},"
                            " safety_stock = excluded.safety_stock, holdback = excluded.holdback, blocked = 0,"
                            " updated_at = excluded.updated_at",
                            [(loc, sku, oh, ss, hb) for loc, sku, oh, ss, hb, e in values if not e])
    finally:
        cur.close()


def _movements(session: Session, changed: list[_Change], feed_id: str, actor: str | None, pg: bool,
               at: datetime) -> None:
    cur = _raw(session).cursor()
    try:
        if pg:
            tail = "\t0\tfeed\t" + _copy_text([feed_id, actor]) + "\n"
            head = at.isoformat() + "\t"
            _copy(cur, "COPY stockmovement (at, location, sku, on_hand_delta, reserved_delta, cause, ref, actor)"
                       " FROM STDIN", (f"{head}{c[0]}\t{c[1]}\t{c[5]}{tail}" for c in changed))
        else:
            ts = at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
            cur.executemany("INSERT INTO stockmovement (at, location, sku, on_hand_delta, reserved_delta, cause, ref,"
                            " actor) VALUES (?, ?, ?, ?, 0, 'feed', ?, ?)",
                            [(ts, c[0], c[1], c[5], feed_id, actor) for c in changed])
    finally:
        cur.close()
