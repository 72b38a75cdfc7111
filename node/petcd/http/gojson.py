"""JSON -> protobuf for the gateway, Go-faithful: what etcd's gateway (grpc-gateway v1 over
golang/protobuf 1.4 jsonpb and Go's encoding/json) accepts, and its texts for what it refuses.

Contract:
- `values(body)` yields the JSON values of a request body one after another, as Go's
  json.Decoder reads a stream (numbers kept as their literal text, `Num`; anything after a
  value is only looked at when the next value is asked for); a value that does not parse
  raises `GoJSONError` with Go's syntax-error text ("unexpected EOF", "invalid character 'x'
  looking for beginning of value", "invalid character '\\n' in string literal", ...).
- `to_message(value, cls)` returns the `cls` request for one decoded value, or raises
  `GoJSONError` with etcd's text: "json: cannot unmarshal string into Go value of type bool",
  "illegal base64 data at input byte 3", `unknown value "\\"X\\"" for enum ...`.
  As jsonpb does: fields are visited in declaration order (so the first error reported is the
  first bad field of the descriptor, and of two members of a oneof the later one wins), a
  field is found by its proto name and then by its lowerCamel JSON name (which wins), unknown
  fields and nulls are ignored, and a null message (or null body) is the empty message.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from petcd import errors

_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VAL = {c: i for i, c in enumerate(_B64)}
_WS = " \t\r\n"
_SURROGATE = re.compile("[\ud800-\udfff]")
_MUST_ESCAPE = re.compile('["\\\\\x00-\x1f]')


class Num(str):
    """A JSON number, as its literal text (Go's messages quote the literal)."""

    __slots__ = ()


class GoJSONError(ValueError):
    """A body etcd's gateway refuses; the text is its error message."""


def _constant(name: str) -> Any:
    # Python's json takes NaN/Infinity; Go's does not.
    if name.startswith("-"):
        raise GoJSONError(errors.JSON_BAD_NUMBER)
    raise GoJSONError(errors.JSON_BAD_VALUE_START.format(char=name[0]))


_DECODER = json.JSONDecoder(parse_int=Num, parse_float=Num, parse_constant=_constant)


# -- syntax errors ------------------------------------------------------------------------------


def quote_char(ch: str) -> str:
    """Go's encoding/json quoteChar of the first byte of `ch`."""
    if "\udc80" <= ch[:1] <= "\udcff":
        c = chr(ord(ch[0]) - 0xDC00)  # an invalid UTF-8 byte of the body (surrogateescape)
    else:
        c = chr((ch.encode("utf-8", "surrogatepass")[:1] or b"\0")[0])
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\v": "\\v", "\\": "\\\\"}
    if c in named:
        return f"'{named[c]}'"
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"'\\x{ord(c):02x}'"
    if ord(c) >= 0x80 and not (c.isprintable() and c != "\xa0" and c != "\xad"):
        return f"'\\u{ord(c):04x}'"
    return f"'{c}'"


def _open_container(doc: str, pos: int) -> str:
    """The innermost '{' or '[' open at `pos` (strings skipped), '' at the top level."""
    stack: list[str] = []
    i, in_str = 0, False
    while i < pos:
        c = doc[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "{[":
            stack.append(c)
        elif c in "}]" and stack:
            stack.pop()
        i += 1
    return stack[-1] if stack else ""


def _literal_error(doc: str, pos: int) -> str | None:
    """Go's text for a bad `true`/`false`/`null` literal starting at `pos`, if it is one."""
    for word in ("true", "false", "null"):
        if doc[pos] == word[0]:
            for k in range(1, len(word)):
                if pos + k >= len(doc):
                    return None  # truncated: the caller's EOF text
                if doc[pos + k] != word[k]:
                    return (f"invalid character {quote_char(doc[pos + k])} in literal {word} "
                            f"(expecting '{word[k]}')")
    return None


def _syntax_text(doc: str, exc: json.JSONDecodeError, eof: str) -> str:
    """Go's text for the syntax error Python's decoder reported as `exc`; `eof` is the text
    for input that ends too early (the Decoder's "unexpected EOF", Unmarshal's "unexpected end
    of JSON input")."""
    pos, msg = exc.pos, exc.msg
    if pos >= len(doc.rstrip(_WS)):
        return eof
    ch = doc[pos]
    prev = doc[pos - 1] if pos > 0 else ""
    if msg == "Expecting value":
        if ch == "-":
            return eof if pos + 1 >= len(doc) else \
                f"invalid character {quote_char(doc[pos + 1])} in numeric literal"
        lit = _literal_error(doc, pos)
        if lit is not None:
            return lit
        if ch in "tfn" and len(doc) - pos < 5:
            return eof
        return f"invalid character {quote_char(ch)} looking for beginning of value"
    if msg.startswith("Expecting property name"):
        return f"invalid character {quote_char(ch)} looking for beginning of object key string"
    if msg == "Expecting ':' delimiter":
        return f"invalid character {quote_char(ch)} after object key"
    if msg in ("Expecting ',' delimiter", "Extra data"):
        if prev.isdigit() and ch in ".eE":
            nxt = pos + 1
            if ch != "." and nxt < len(doc) and doc[nxt] in "+-":
                nxt += 1
            if nxt >= len(doc):
                return eof
            where = "after decimal point in" if ch == "." else "in exponent of"
            return f"invalid character {quote_char(doc[nxt])} {where} numeric literal"
        if msg == "Extra data":
            return f"invalid character {quote_char(ch)} after top-level value"
        after = "object key:value pair" if _open_container(doc, pos) == "{" else "array element"
        return f"invalid character {quote_char(ch)} after {after}"
    if msg.startswith("Invalid control character"):
        return f"invalid character {quote_char(ch)} in string literal"
    if msg.startswith("Invalid \\escape"):
        esc = doc[pos + 1] if doc[pos] == "\\" and pos + 1 < len(doc) else ch
        return f"invalid character {quote_char(esc)} in string escape code"
    if msg.startswith("Invalid \\uXXXX"):
        start = doc.rfind("\\u", 0, pos + 2) + 2
        for k in range(start, min(start + 4, len(doc))):
            if doc[k] not in "0123456789abcdefABCDEF":
                return f"invalid character {quote_char(doc[k])} in \\u hexadecimal character escape"
        return eof
    if msg.startswith("Unterminated string"):
        return eof
    return f"invalid character {quote_char(ch)} looking for beginning of value"


def values(body: bytes) -> Iterator[Any]:
    """The JSON values of `body`, one after another (see the module docstring)."""
    # Invalid UTF-8 is kept as lone surrogates: Go names such a byte in a syntax error, and
    # reads it as U+FFFD inside a string (`_go_string`).
    doc = body.decode("utf-8", "surrogateescape")
    pos = 0
    while True:
        while pos < len(doc) and doc[pos] in _WS:
            pos += 1
        if pos >= len(doc):
            return
        try:
            value, pos = _DECODER.raw_decode(doc, pos)
        except json.JSONDecodeError as exc:
            raise GoJSONError(_syntax_text(doc, exc, "unexpected EOF")) from None
        yield value


def _unmarshal(doc: str) -> Any:
    """Go's json.Unmarshal of `doc` (one value, nothing after it)."""
    try:
        return _DECODER.decode(doc)
    except json.JSONDecodeError as exc:
        raise GoJSONError(_syntax_text(doc, exc, "unexpected end of JSON input")) from None


# -- values -------------------------------------------------------------------------------------


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
    return GoJSONError(errors.JSON_UNMARSHAL_TYPE.format(what=what, go_type=go_type))


def _go_string(s: str) -> str:
    """A decoded JSON string as Go holds it: lone surrogates (from escapes) become U+FFFD."""
    return _SURROGATE.sub("\ufffd", s) if _SURROGATE.search(s) else s


def go_base64(s: str) -> bytes:
    """Go's base64.StdEncoding.DecodeString (padding required, trailing bits not checked,
    CR/LF skipped), with its CorruptInputError text "illegal base64 data at input byte N"
    (N counts bytes of the UTF-8 string)."""
    data = _go_string(s).encode("utf-8")
    if len(data) % 4 == 0 and b"=" not in data[:-2]:
        # The common case at C speed (strict mode still takes padding after a full quantum,
        # hence the shape check); what it refuses is decided by Go's algorithm below.
        try:
            return binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error:
            pass
    out = bytearray()
    si, n = 0, len(data)
    while si < n:
        buf: list[int] = []
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise GoJSONError(errors.BASE64_ILLEGAL.format(offset=si - j))
            c = data[si]
            si += 1
            val = _B64_VAL.get(c)
            if val is not None:
                buf.append(val)
                j += 1
                continue
            if c in b"\r\n":
                continue
            if c != ord("=") or j < 2:
                raise GoJSONError(errors.BASE64_ILLEGAL.format(offset=si - 1))
            if j == 2:
                while si < n and data[si] in b"\r\n":
                    si += 1
                if si == n:
                    raise GoJSONError(errors.BASE64_ILLEGAL.format(offset=n))
                if data[si] != ord("="):
                    raise GoJSONError(errors.BASE64_ILLEGAL.format(offset=si - 1))
                si += 1
            while si < n and data[si] in b"\r\n":
                si += 1
            if si < n:
                raise GoJSONError(errors.BASE64_ILLEGAL.format(offset=si))
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
    if not body.isdigit() or not body.isascii():
        return None
    n = int(lit)
    return n if lo <= n <= hi else None


def _to_int(v: Any, fd: Any) -> int:
    go_type, lo, hi = _INT_TYPES[fd.type]
    if isinstance(v, str) and not isinstance(v, Num):
        # jsonpb strips the quotes of a string integer and json.Unmarshals the raw text inside:
        # a character that was escaped there is a backslash to Go, an error at that point.
        escaped = _MUST_ESCAPE.search(v)
        v = _unmarshal(v if escaped is None else v[: escaped.start()] + "\\")
    if v is None:
        return 0
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
            raw = json.dumps(v, ensure_ascii=False)
            quoted = '"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'
            raise GoJSONError(errors.JSON_UNKNOWN_ENUM.format(value=quoted, enum=et.full_name))
        return int(ev.number)
    raise _type_error(v, "protoreflect.EnumNumber")


def _scalar(v: Any, fd: Any) -> Any:
    t = fd.type
    if t == FieldDescriptor.TYPE_BYTES:
        if isinstance(v, list):
            out = bytearray()
            for el in v:
                if el is None:
                    out.append(0)
                    continue
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
        return _go_string(v)
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(v, bool):
            raise _type_error(v, "bool")
        return v
    if t == FieldDescriptor.TYPE_ENUM:
        return _to_enum(v, fd)
    if t in _INT_TYPES:
        return _to_int(v, fd)
    raise GoJSONError(errors.JSON_UNMARSHAL_TYPE.format(what=_kind(v), go_type="float64"))


# -- messages -----------------------------------------------------------------------------------


def to_message(value: Any, cls: type[Message]) -> Message:
    """`value` as a `cls` (see the module docstring)."""
    msg = cls()
    _fill(msg, value)
    return msg


def _fill(msg: Message, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _type_error(value, "map[string]json.RawMessage")
    for fd in msg.DESCRIPTOR.fields:
        v = value.get(fd.name)
        if fd.json_name in value:
            v = value[fd.json_name]
        if v is None:
            continue
        if fd.is_repeated:
            if not isinstance(v, list):
                raise _type_error(v, "[]json.RawMessage")
            target: Any = getattr(msg, fd.name)
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
