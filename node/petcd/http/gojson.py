"""JSON -> protobuf for the gateway, with the texts etcd's gateway (grpc-gateway v1 over
golang/protobuf jsonpb and Go's encoding/json) answers for bodies it refuses.

Contract: `to_message(value, cls)` takes a value decoded with `DECODER` (JSON numbers kept as
their literal text, `Num`) and returns the request, or raises `GoJSONError` whose text is
etcd's: "json: cannot unmarshal string into Go value of type bool", "illegal base64 data at
input byte 3", `unknown value "\\"X\\"" for enum ...`. Field names: proto names and their
lowerCamel JSON names; unknown fields and nulls are ignored, as jsonpb does.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VAL = {c: i for i, c in enumerate(_B64)}


class Num(str):
    """A JSON number, as its literal text (Go's messages quote the literal)."""

    __slots__ = ()


DECODER = json.JSONDecoder(parse_int=Num, parse_float=Num)
"""Go-faithful decoding: numbers stay literals (1e3 is not 1000 for an int64 field)."""


class GoJSONError(ValueError):
    """A body etcd's gateway refuses; the text is its error message."""


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Num):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def _type_error(v: Any, go_type: str, literal: bool = False) -> GoJSONError:
    what = f"number {v}" if literal and isinstance(v, Num) else _kind(v)
    return GoJSONError(f"json: cannot unmarshal {what} into Go value of type {go_type}")


def go_base64(s: str) -> bytes:
    """Go's base64.StdEncoding.DecodeString (padding required; CR/LF skipped), with its
    CorruptInputError text "illegal base64 data at input byte N"."""
    out = bytearray()
    si, n = 0, len(s)
    while si < n:
        buf: list[int] = []
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise GoJSONError(f"illegal base64 data at input byte {si - j}")
            c = s[si]
            si += 1
            val = _B64_VAL.get(c)
            if val is not None:
                buf.append(val)
                j += 1
                continue
            if c in "\r\n":
                continue
            if c != "=" or j < 2:
                raise GoJSONError(f"illegal base64 data at input byte {si - 1}")
            if j == 2:
                while si < n and s[si] in "\r\n":
                    si += 1
                if si == n:
                    raise GoJSONError(f"illegal base64 data at input byte {n}")
                if s[si] != "=":
                    raise GoJSONError(f"illegal base64 data at input byte {si - 1}")
                si += 1
            while si < n and s[si] in "\r\n":
                si += 1
            if si < n:
                raise GoJSONError(f"illegal base64 data at input byte {si}")
            break
        v = 0
        for k in range(4):
            v = (v << 6) | (buf[k] if k < len(buf) else 0)
        out += v.to_bytes(3, "big")[: max(0, len(buf) - 1)]
    return bytes(out)


_INT_TYPES = {
    FieldDescriptor.TYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: ("uint64", 0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: ("uint64", 0, 2**64 - 1),
    FieldDescriptor.TYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: ("uint32", 0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: ("uint32", 0, 2**32 - 1),
}


def _int_literal(lit: str, lo: int, hi: int) -> int | None:
    body = lit.removeprefix("-")
    if not body.isdigit():
        return None
    n = int(lit)
    return n if lo <= n <= hi else None


def _go_syntax_error(doc: str, exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(doc.rstrip(" \t\r\n")):
        return "unexpected end of JSON input"
    ch = doc[exc.pos]
    if exc.msg == "Expecting value":
        return f"invalid character '{ch}' looking for beginning of value"
    return exc.msg


def _to_int(v: Any, fd: Any) -> int:
    go_type, lo, hi = _INT_TYPES[fd.type]
    if isinstance(v, str) and not isinstance(v, Num):
        # jsonpb unquotes a string integer and decodes what is inside as JSON.
        inner = v
        try:
            v = DECODER.decode(inner)
        except json.JSONDecodeError as exc:
            raise GoJSONError(_go_syntax_error(inner, exc)) from None
    if not isinstance(v, Num):
        raise _type_error(v, go_type)
    n = _int_literal(v, lo, hi)
    if n is None:
        raise _type_error(v, go_type, literal=True)
    return n


def _to_enum(v: Any, fd: Any) -> int:
    et = fd.enum_type
    if isinstance(v, Num):
        n = _int_literal(v, -(2**31), 2**31 - 1)
        if n is None:
            raise _type_error(v, "protoreflect.EnumNumber", literal=True)
        return n
    if isinstance(v, str):
        ev = et.values_by_name.get(v)
        if ev is None:
            raw = '"' + v + '"'
            quoted = '"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'
            raise GoJSONError(f"unknown value {quoted} for enum {et.full_name}")
        return int(ev.number)
    raise _type_error(v, "protoreflect.EnumNumber")


def _scalar(v: Any, fd: Any) -> Any:
    t = fd.type
    if t == FieldDescriptor.TYPE_BYTES:
        if isinstance(v, list):
            out = bytearray()
            for el in v:
                if not isinstance(el, Num):
                    raise _type_error(el, "uint8")
                b = _int_literal(el, 0, 255)
                if b is None:
                    raise _type_error(el, "uint8", literal=True)
                out.append(b)
            return bytes(out)
        if not isinstance(v, str) or isinstance(v, Num):
            raise _type_error(v, "[]uint8")
        return go_base64(v)
    if t == FieldDescriptor.TYPE_STRING:
        if not isinstance(v, str) or isinstance(v, Num):
            raise _type_error(v, "string")
        return v
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(v, bool):
            raise _type_error(v, "bool")
        return v
    if t == FieldDescriptor.TYPE_ENUM:
        return _to_enum(v, fd)
    if t in _INT_TYPES:
        return _to_int(v, fd)
    raise GoJSONError(f"json: cannot unmarshal {_kind(v)} into Go value of type float64")


def to_message(value: Any, cls: type[Message]) -> Message:
    """`value` as a `cls` (see the module docstring)."""
    msg = cls()
    _fill(msg, value)
    return msg


def _fill(msg: Message, value: Any) -> None:
    if not isinstance(value, dict):
        raise _type_error(value, "map[string]json.RawMessage")
    desc = msg.DESCRIPTOR
    by_name = desc.fields_by_name
    by_json = {f.json_name: f for f in desc.fields}
    for name, v in value.items():
        fd = by_name.get(name) or by_json.get(name)
        if fd is None or v is None:
            continue
        if fd.is_repeated:
            if not isinstance(v, list):
                raise _type_error(v, "[]json.RawMessage")
            target = getattr(msg, fd.name)
            for el in v:
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill(target.add(), el)
                else:
                    target.append(_scalar(el, fd))
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            sub = getattr(msg, fd.name)
            sub.SetInParent()
            _fill(sub, v)
        else:
            setattr(msg, fd.name, _scalar(v, fd))
