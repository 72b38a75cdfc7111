"""Flag-value parsing with the semantics (and error strings) of etcd 3.5's command line.

etcd parses its command line with Go's ``flag`` package plus etcd's own value types
(``pkg/flags``). This module reproduces the observable parts of both:

* value parsers (:func:`parse_bool`, :func:`parse_uint`, :func:`parse_duration`,
  :func:`parse_urls`, ...) raise :class:`ValueParseError` whose text is the reason Go would print
  (``parse error``, ``value out of range``, ``invalid value``, the URL messages of
  ``types.NewURLs``);
* :func:`split_host_port` mirrors Go's ``net.SplitHostPort`` closely enough for URL checks;
* :func:`flag_to_env` maps a flag name to its ``ETCD_*`` environment variable.

Nothing here knows the set of etcd flags; :mod:`petcd.flags` holds that table.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from petcd import errors

__all__ = [
    "ValueParseError",
    "flag_to_env",
    "is_ip",
    "parse_bool",
    "parse_duration",
    "parse_int",
    "parse_uint",
    "parse_url",
    "parse_urls",
    "parse_urls_map",
    "split_host_port",
]

URL_SCHEMES = ("http", "https", "unix", "unixs")


class ValueParseError(ValueError):
    """A flag value could not be parsed; ``str(e)`` is the reason as etcd/Go words it."""


def flag_to_env(prefix: str, name: str) -> str:
    """``flag_to_env("ETCD", "initial-cluster-token") == "ETCD_INITIAL_CLUSTER_TOKEN"``."""
    return prefix + "_" + name.replace("-", "_").upper()


def parse_bool(s: str) -> bool:
    """Go's ``strconv.ParseBool``: 1/t/T/TRUE/true/True and the 0/f/F/FALSE/false/False set."""
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueParseError(errors.VALUE_PARSE_ERROR)


def _parse_go_int(s: str) -> int:
    """Go ``strconv.ParseInt(s, 0, 64)`` syntax: optional sign, 0x/0o/0b/0 prefixes, ``_``."""
    m = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO]?[0-7_]*|[1-9][0-9_]*)", s)
    if m is None:
        raise ValueParseError(errors.VALUE_PARSE_ERROR)
    sign, body = m.group(1), m.group(2)
    if "__" in body or body.endswith("_"):
        raise ValueParseError(errors.VALUE_PARSE_ERROR)
    digits = body.replace("_", "")
    low = digits.lower()
    if low.startswith(("0x", "0b", "0o")):
        value = int(low, 0)
    elif len(low) > 1 and low.startswith("0"):
        value = int(low[1:], 8)
    else:
        value = int(low)
    return -value if sign == "-" else value


def parse_uint(s: str, bits: int = 64) -> int:
    """Unsigned integer as Go's flag ``UintVar``/``Uint64Var`` (``bits`` 64 on amd64)."""
    if s.startswith(("+", "-")):
        raise ValueParseError(errors.VALUE_PARSE_ERROR)
    value = _parse_go_int(s)
    if value >= 1 << bits:
        raise ValueParseError(errors.VALUE_OUT_OF_RANGE)
    return value


def parse_int(s: str, bits: int = 64) -> int:
    """Signed integer as Go's flag ``IntVar``/``Int64Var``."""
    value = _parse_go_int(s)
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueParseError(errors.VALUE_OUT_OF_RANGE)
    return value


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(s: str) -> float:
    """Go ``time.ParseDuration`` (e.g. ``"1h30m"``, ``"250ms"``, ``"0"``); returns seconds."""
    text = s
    sign = 1.0
    if text[:1] in ("+", "-"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueParseError(errors.VALUE_PARSE_ERROR)
    total = 0.0
    pos = 0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None or m.group(1) in ("", "."):
            raise ValueParseError(errors.VALUE_PARSE_ERROR)
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go ``net.SplitHostPort``: ``"h:p"``/``"[v6]:p"`` -> (host, port); else ValueParseError."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueParseError(errors.ADDR_MISSING_BRACKET.format(hostport=hostport))
        rest = hostport[end + 1 :]
        if not rest.startswith(":"):
            raise ValueParseError(errors.ADDR_MISSING_PORT.format(hostport=hostport))
        host, port = hostport[1:end], rest[1:]
    else:
        idx = hostport.rfind(":")
        if idx < 0:
            raise ValueParseError(errors.ADDR_MISSING_PORT.format(hostport=hostport))
        host, port = hostport[:idx], hostport[idx + 1 :]
        if ":" in host:
            raise ValueParseError(errors.ADDR_TOO_MANY_COLONS.format(hostport=hostport))
    if "[" in port or "]" in port:
        raise ValueParseError(errors.ADDR_UNEXPECTED_BRACKET.format(hostport=hostport))
    return host, port


def is_ip(host: str) -> bool:
    """True when ``host`` is a literal IPv4/IPv6 address (Go ``net.ParseIP != nil``)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_url(raw: str) -> str:
    """Validate one URL as etcd's ``types.NewURLs`` does; return its canonical string.

    The canonical form is ``scheme://host:port`` (scheme lower-cased), which is what Go's
    ``url.URL.String()`` yields for the URLs etcd accepts; member IDs hash this form.
    """
    text = raw.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueParseError(errors.URL_PARSE.format(text=text, error=exc)) from exc
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise ValueParseError(errors.URL_BAD_SCHEME.format(text=text))
    try:
        split_host_port(parts.netloc)
    except ValueParseError:
        raise ValueParseError(errors.URL_NOT_HOST_PORT.format(text=text)) from None
    if parts.path:
        raise ValueParseError(errors.URL_HAS_PATH.format(text=text))
    query = f"?{parts.query}" if parts.query else ""
    frag = f"#{parts.fragment}" if parts.fragment else ""
    return f"{scheme}://{parts.netloc}{query}{frag}"


def parse_urls(value: str) -> list[str]:
    """Comma-separated URL list -> canonical URLs, sorted and de-duplicated (etcd UniqueURLs)."""
    items = value.split(",")
    if not items:
        raise ValueParseError(errors.URL_NONE_GIVEN)
    return sorted({parse_url(item) for item in items})


def parse_urls_map(value: str) -> dict[str, list[str]]:
    """``name=url,name=url2,other=url3`` -> {name: sorted urls} (etcd ``types.NewURLsMap``).

    Empty comma items are skipped; an item without ``=`` has an empty URL, which fails with
    etcd's scheme error, exactly like etcd.
    """
    grouped: dict[str, list[str]] = {}
    for item in value.split(","):
        if not item:
            continue
        name, _, url = item.partition("=")
        grouped.setdefault(name, []).append(url)
    return {name: sorted(parse_url(u) for u in urls) for name, urls in grouped.items()}
