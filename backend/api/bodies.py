"""Bulk request bodies: a JSON object holding a list, or a CSV file with a header row."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from fastapi import Request

from backend.errors import DomainError

_NUMERIC = {"lat", "lon", "same_day_radius_km", "daily_capacity", "weight_kg", "on_hand", "delta", "safety_stock",
            "holdback", "lead_days"}
_BOOL = {"ships", "pickup", "active"}


async def csv_or_json_rows(request: Request, key: str) -> list[dict[str, Any]]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if ctype in ("text/csv", "application/csv"):
        return parse_csv(raw)
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DomainError("invalid_json", f"the body is not valid JSON: {e}", status=400) from e
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise DomainError("invalid_request", f"the body must be an object with a list under {key!r}", status=422)
    return body[key]


def parse_csv(raw: bytes) -> list[dict[str, Any]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DomainError("invalid_csv", "the CSV must be UTF-8", status=400) from e
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise DomainError("invalid_csv", "the CSV needs a header row", status=400)
    rows: list[dict[str, Any]] = []
    for rec in reader:
        row: dict[str, Any] = {}
        for k, v in rec.items():
            if k is None:
                continue
            k = k.strip()
            v = (v or "").strip()
            if v == "":
                continue
            if k in _NUMERIC:
                try:
                    row[k] = float(v) if "." in v or k in ("lat", "lon") else int(v)
                except ValueError:
                    row[k] = v  # left for row validation to report
            elif k in _BOOL:
                row[k] = v.lower() in ("1", "true", "yes", "y")
            else:
                row[k] = v
        rows.append(row)
    return rows
