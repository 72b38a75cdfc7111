"""Toxic definitions: types, attributes, JSON shape and request parsing.

A :class:`Toxic` is the configuration the API shows (Toxiproxy's ToxicWrapper):
``{"attributes": {...}, "name", "type", "stream", "toxicity"}``. What a toxic does
to bytes lives in :mod:`toxiproxy_server.stage`.

Invariants: ``type`` is one of :data:`KINDS`; ``attributes`` holds exactly that
kind's fields, in Toxiproxy's order, as ints; ``direction`` agrees with ``stream``
(which keeps the client's spelling, e.g. ``"UPSTREAM"``, as Toxiproxy does).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .errors import BAD_REQUEST_BODY, INVALID_STREAM, INVALID_TOXIC_TYPE
from .jsonfields import as_object, get_float, get_int, get_str, json_kind, lookup, number_out


class Direction(enum.IntEnum):
    """Which way a link carries bytes: upstream is client -> server."""

    UPSTREAM = 0
    DOWNSTREAM = 1

    @classmethod
    def parse(cls, stream: str) -> Direction:
        """Parse a ``stream`` value case-insensitively; raise the API's invalid-stream error."""
        lowered = stream.lower()
        if lowered == "upstream":
            return cls.UPSTREAM
        if lowered == "downstream":
            return cls.DOWNSTREAM
        raise INVALID_STREAM


@dataclass(frozen=True)
class Kind:
    """A toxic type: its Go struct name (for error texts) and its integer attributes."""

    type: str
    struct: str
    attributes: tuple[tuple[str, str], ...]  # (name, Go type) in Toxiproxy's field order


KINDS: dict[str, Kind] = {
    kind.type: kind
    for kind in (
        Kind("noop", "NoopToxic", ()),
        Kind("latency", "LatencyToxic", (("latency", "int64"), ("jitter", "int64"))),
        Kind("bandwidth", "BandwidthToxic", (("rate", "int64"),)),
        Kind("slow_close", "SlowCloseToxic", (("delay", "int64"),)),
        Kind("timeout", "TimeoutToxic", (("timeout", "int64"),)),
        Kind("reset_peer", "ResetToxic", (("timeout", "int64"),)),
        Kind(
            "slicer",
            "SlicerToxic",
            (("average_size", "int"), ("size_variation", "int"), ("delay", "int")),
        ),
        Kind("limit_data", "LimitDataToxic", (("bytes", "int64"),)),
    )
}

WRAPPER = "ToxicWrapper"


@dataclass
class Toxic:
    """One configured toxic of a proxy (mutable: updates change attributes/toxicity)."""

    name: str
    type: str
    stream: str
    toxicity: float
    direction: Direction
    attributes: dict[str, int] = field(default_factory=dict)

    @property
    def kind(self) -> Kind:
        """This toxic's type description."""
        return KINDS[self.type]

    def attr(self, name: str) -> int:
        """Return an attribute's current value (0 if never set, as Go's zero value)."""
        return self.attributes.get(name, 0)

    def to_json(self) -> dict[str, Any]:
        """Return Toxiproxy's JSON form of this toxic."""
        return {
            "attributes": {name: self.attr(name) for name, _ in self.kind.attributes},
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": number_out(self.toxicity),
        }


def _decode_attributes(kind: Kind, raw: Any, current: dict[str, int]) -> dict[str, int]:
    """Merge a request's ``attributes`` into ``current``; absent or null fields keep theirs."""
    if raw is not None and not isinstance(raw, dict):
        raise BAD_REQUEST_BODY.wrap(
            f"json: cannot unmarshal {json_kind(raw)} into Go struct field "
            f"{WRAPPER}.attributes of type toxics.{kind.struct}"
        )
    obj = raw or {}
    merged = dict(current)
    for name, gotype in kind.attributes:
        merged[name] = get_int(
            obj, name, kind.struct, current.get(name, 0), gotype, path=f"attributes.{name}"
        )
    return merged


def parse_new_toxic(body: Any) -> Toxic:
    """Build a toxic from a create request, checking in Toxiproxy's order.

    Order: field types, then ``stream``, then the default name ``<type>_<stream>``,
    then the type; the caller checks the name is free before adding it.
    """
    obj = as_object(body, "toxics.ToxicWrapper")
    name = get_str(obj, "name", WRAPPER, "")
    toxic_type = get_str(obj, "type", WRAPPER, "")
    stream = get_str(obj, "stream", WRAPPER, "downstream")
    toxicity = get_float(obj, "toxicity", WRAPPER, 1.0)
    raw_attributes = lookup(obj, "attributes")
    if raw_attributes is not None and not isinstance(raw_attributes, dict):
        raise BAD_REQUEST_BODY.wrap(
            f"json: cannot unmarshal {json_kind(raw_attributes)} into Go struct field "
            f"{WRAPPER}.attributes of type toxics.NoopToxic"
        )
    direction = Direction.parse(stream)
    if name == "":
        name = f"{toxic_type}_{stream}"
    kind = KINDS.get(toxic_type)
    if kind is None:
        raise INVALID_TOXIC_TYPE
    attributes = _decode_attributes(kind, raw_attributes, {})
    return Toxic(name, toxic_type, stream, toxicity, direction, attributes)


def apply_update(toxic: Toxic, body: Any) -> tuple[dict[str, int], float]:
    """Parse an update request: return the merged attributes and the new toxicity.

    Only ``attributes`` and ``toxicity`` can change (name, type and stream cannot).
    Nothing is modified here, so a bad request leaves the toxic untouched.
    """
    obj = as_object(body, "struct { Attributes interface {}; Toxicity float32 }")
    attributes = _decode_attributes(toxic.kind, lookup(obj, "attributes"), toxic.attributes)
    toxicity = get_float(obj, "toxicity", "", toxic.toxicity)
    return attributes, toxicity
