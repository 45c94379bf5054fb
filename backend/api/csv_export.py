"""`?format=csv` for list endpoints: rows of (possibly nested) dicts become one CSV table.

Nested dicts are flattened into dotted columns (`reject_reasons.damaged`); lists are joined with spaces. Columns
are the union over all rows, in first-seen order, so a key missing from one row is an empty cell there.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel

Format = Literal["json", "csv"]
FormatQuery = Query("json", description="json, or csv to download the table")


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        elif isinstance(v, list | tuple):
            out[key] = " ".join(str(x) for x in v)
        elif isinstance(v, datetime):
            out[key] = v.isoformat()
        elif isinstance(v, float):
            out[key] = round(v, 4)
        else:
            out[key] = v
    return out


def to_csv(rows: Iterable[Mapping[str, Any] | BaseModel]) -> str:
    flat = [flatten(r.model_dump(mode="json") if isinstance(r, BaseModel) else r) for r in rows]
    columns: dict[str, None] = {}
    for r in flat:
        columns.update(dict.fromkeys(r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()


def csv_response(rows: Iterable[Mapping[str, Any] | BaseModel], filename: str) -> Response:
    return Response(to_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
