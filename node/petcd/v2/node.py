"""The v2 store's tree node and its external (JSON) form.

A node is a key (a string value) or a directory (children by name); both have a created and a
modified index and an optional expiry (nanoseconds since the epoch, 0 = permanent). Paths are
absolute and clean ("/", "/a/b"). A name starting with "_" is hidden: listings skip it.

`extern()` builds etcd's NodeExtern JSON object with its field order and omitempty rules:
key, value, dir, expiration, ttl, nodes, modifiedIndex, createdIndex; the root's key is
empty (etcd keeps v2 keys under "/1" and trims that prefix, leaving the root nameless).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

NS = 1_000_000_000
MIN_EXPIRE_NS = 946_684_800 * NS
"""2000-01-01T00:00:00Z: earlier expiry times are taken as permanent (as etcd does)."""


@dataclass(eq=False, slots=True)
class Node:
    """One key or directory. `children is None` exactly for keys."""

    path: str
    created: int
    modified: int
    value: str = ""
    children: dict[str, Node] | None = None
    expire_ns: int = 0
    parent: Node | None = field(default=None, repr=False)
    removed: bool = False

    @property
    def is_dir(self) -> bool:
        return self.children is not None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def hidden(self) -> bool:
        return self.name.startswith("_")

    @property
    def permanent(self) -> bool:
        return self.expire_ns == 0

    def compare(self, prev_value: str, prev_index: int) -> tuple[bool, str]:
        """(ok, cause) of a compare-and-swap/delete test, cause in etcd's wording."""
        index_ok = prev_index == 0 or self.modified == prev_index
        value_ok = prev_value == "" or self.value == prev_value
        if index_ok and value_ok:
            return True, ""
        if index_ok:
            return False, f"[{prev_value} != {self.value}]"
        if value_ok:
            return False, f"[{prev_index} != {self.modified}]"
        return False, f"[{prev_value} != {self.value}] [{prev_index} != {self.modified}]"


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros."""
    secs, frac = divmod(ns, NS)
    base = datetime.datetime.fromtimestamp(secs, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def ttl_seconds(expire_ns: int, now_ns: int) -> int:
    """Remaining TTL rounded up to whole seconds, with Go's truncating division."""
    d = expire_ns - now_ns
    q = abs(d) // NS * (1 if d >= 0 else -1)
    if d - q * NS > 0:
        q += 1
    return q


def display_key(path: str) -> str:
    return "" if path == "/" else path


def _put_expiry(doc: dict[str, Any], n: Node, now_ns: int) -> None:
    if not n.permanent:
        doc["expiration"] = rfc3339nano(n.expire_ns)
        ttl = ttl_seconds(n.expire_ns, now_ns)
        if ttl:
            doc["ttl"] = ttl


def _put_indexes(doc: dict[str, Any], n: Node) -> None:
    if n.modified:
        doc["modifiedIndex"] = n.modified
    if n.created:
        doc["createdIndex"] = n.created


def _children(n: Node, recursive: bool, sort: bool, now_ns: int) -> list[dict[str, Any]]:
    assert n.children is not None
    out = [extern(c, recursive, sort, now_ns) for c in n.children.values() if not c.hidden]
    if sort:
        out.sort(key=lambda d: str(d.get("key", "")))
    return out


def extern(n: Node, recursive: bool, sort: bool, now_ns: int) -> dict[str, Any]:
    """etcd's node.Repr: a directory lists its children only when `recursive`."""
    doc: dict[str, Any] = {}
    key = display_key(n.path)
    if key:
        doc["key"] = key
    if n.is_dir:
        doc["dir"] = True
        _put_expiry(doc, n, now_ns)
        if recursive:
            nodes = _children(n, recursive, sort, now_ns)
            if nodes:
                doc["nodes"] = nodes
    else:
        doc["value"] = n.value
        _put_expiry(doc, n, now_ns)
    _put_indexes(doc, n)
    return doc


def extern_get(n: Node, recursive: bool, sort: bool, now_ns: int) -> dict[str, Any]:
    """etcd's loadInternalNode (a GET): a directory always lists its direct children."""
    if not n.is_dir:
        return extern(n, False, False, now_ns)
    doc: dict[str, Any] = {}
    key = display_key(n.path)
    if key:
        doc["key"] = key
    doc["dir"] = True
    _put_expiry(doc, n, now_ns)
    nodes = _children(n, recursive, sort, now_ns)
    if nodes:
        doc["nodes"] = nodes
    _put_indexes(doc, n)
    return doc


def event_node(path: str, modified: int, created: int) -> dict[str, Any]:
    """The bare node of a new event (etcd's newEvent), filled in by the operation."""
    doc: dict[str, Any] = {}
    key = display_key(path)
    if key:
        doc["key"] = key
    if modified:
        doc["modifiedIndex"] = modified
    if created:
        doc["createdIndex"] = created
    return doc


def with_fields(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """`doc` with `fields` placed in NodeExtern order (before the indexes)."""
    order = ("key", "value", "dir", "expiration", "ttl", "nodes", "modifiedIndex", "createdIndex")
    merged = {**doc, **{k: v for k, v in fields.items() if v is not None}}
    return {k: merged[k] for k in order if k in merged}
