"""Row-by-row validation for bulk feeds: good rows are applied, bad rows are listed with a reason."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import RejectedRow

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def validate_rows(model: type[M], rows: Iterable[Any], key_field: str) -> tuple[list[tuple[int, M]], list[RejectedRow]]:
    """Validate each row; duplicates of a key within one request keep the last one (as an upsert would)."""
    good: dict[str, tuple[int, M]] = {}
    bad: list[RejectedRow] = []
    for i, raw in enumerate(rows, start=1):
        key = raw.get(key_field) if isinstance(raw, dict) else None
        if not isinstance(raw, dict):
            bad.append(RejectedRow(row=i, code="invalid_row", message="each row must be a JSON object"))
            continue
        try:
            item = model.model_validate(raw)
        except ValidationError as e:
            bad.append(RejectedRow(row=i, code="invalid_row", message=describe_validation_error(e),
                                   key=str(key) if key is not None else None))
            continue
        good[str(getattr(item, key_field))] = (i, item)
    return sorted(good.values(), key=lambda x: x[0]), bad
