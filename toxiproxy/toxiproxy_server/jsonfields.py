"""Decoding request bodies the way Toxiproxy's Go ``encoding/json`` does.

Contracts kept from Go so that clients see the same results:

* only the first JSON value of a body is read; trailing bytes are ignored;
* an empty body is the error ``bad request body: EOF``;
* a top-level ``null`` decodes to "no fields given";
* field names match exactly first, then case-insensitively;
* a field that is absent or ``null`` leaves the current value unchanged;
* a field of the wrong JSON type is an error naming the Go field and type,
  e.g. ``json: cannot unmarshal string into Go struct field Proxy.enabled of type bool``;
* integer fields reject fractions and values outside int64.

Every error raised here is :data:`errors.BAD_REQUEST_BODY` wrapped with a detail.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import BAD_REQUEST_BODY, ApiError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_DECODER = json.JSONDecoder()


def decode_body(raw: bytes) -> Any:
    """Parse the first JSON value in ``raw``; raise ``ApiError`` (400) if there is none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BAD_REQUEST_BODY.wrap(f"invalid UTF-8: {exc.reason}") from exc
    text = text.lstrip(" \t\r\n")
    if not text:
        raise BAD_REQUEST_BODY.wrap("EOF")
    try:
        value, _end = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text):
            raise BAD_REQUEST_BODY.wrap("unexpected EOF") from exc
        raise BAD_REQUEST_BODY.wrap(f"invalid JSON: {exc.msg} at offset {exc.pos}") from exc
    return value


def json_kind(value: Any) -> str:
    """Name a decoded JSON value's type as Go's unmarshal errors do."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _type_error(kind: str, struct: str, field: str, gotype: str) -> ApiError:
    return BAD_REQUEST_BODY.wrap(
        f"json: cannot unmarshal {kind} into Go struct field {struct}.{field} of type {gotype}"
    )


def as_object(value: Any, gotype: str) -> dict[str, Any]:
    """Return ``value`` as a JSON object; ``null`` is an empty one; anything else is an error."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BAD_REQUEST_BODY.wrap(
            f"json: cannot unmarshal {json_kind(value)} into Go value of type {gotype}"
        )
    return value


def as_array(value: Any, gotype: str) -> list[Any]:
    """Return ``value`` as a JSON array; ``null`` is an empty one; anything else is an error."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BAD_REQUEST_BODY.wrap(
            f"json: cannot unmarshal {json_kind(value)} into Go value of type {gotype}"
        )
    return value


def lookup(obj: dict[str, Any], field: str) -> Any:
    """Return the value for ``field`` (exact name first, then case-insensitive), or None."""
    if field in obj:
        return obj[field]
    lowered = field.lower()
    for key, value in obj.items():
        if key.lower() == lowered:
            return value
    return None


def get_str(
    obj: dict[str, Any], field: str, struct: str, default: str, path: str | None = None
) -> str:
    """Read a Go ``string`` field (``path`` names it in errors; defaults to ``field``)."""
    value = lookup(obj, field)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _type_error(json_kind(value), struct, path or field, "string")
    return value


def get_bool(
    obj: dict[str, Any], field: str, struct: str, default: bool, path: str | None = None
) -> bool:
    """Read a Go ``bool`` field."""
    value = lookup(obj, field)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _type_error(json_kind(value), struct, path or field, "bool")
    return value


def get_int(
    obj: dict[str, Any],
    field: str,
    struct: str,
    default: int,
    gotype: str,
    path: str | None = None,
) -> int:
    """Read a Go integer field (``int``/``int64``): whole numbers within int64 only."""
    value = lookup(obj, field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(json_kind(value), struct, path or field, gotype)
    if isinstance(value, float) or not INT64_MIN <= value <= INT64_MAX:
        raise _type_error(f"number {value}", struct, path or field, gotype)
    return value


def get_float(
    obj: dict[str, Any], field: str, struct: str, default: float, path: str | None = None
) -> float:
    """Read a Go ``float32`` field."""
    value = lookup(obj, field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(json_kind(value), struct, path or field, "float32")
    return float(value)


def number_out(value: float) -> int | float:
    """Format a float as Go's JSON encoder would: whole numbers without a fraction."""
    if value.is_integer():
        return int(value)
    return value
