"""``host:port`` strings as Go's ``net`` package reads and prints them.

Toxiproxy reports a started proxy's ``listen`` as the bound address (so port 0
becomes the chosen port) and compares listen addresses after resolving them.
Wildcard hosts (``""``, ``0.0.0.0``, ``::``) bind one dual-stack socket where the
host has IPv6 and are then printed ``[::]:PORT``, as Go does.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


class AddressError(ValueError):
    """An address string that cannot be split or resolved; ``str()`` is Go-like."""


@dataclass(frozen=True)
class Endpoint:
    """A resolved TCP endpoint: a literal IP (or "" for the wildcard) and a port."""

    host: str
    port: int

    @property
    def wildcard(self) -> bool:
        """True when this endpoint means "every local address"."""
        return self.host in WILDCARD_HOSTS

    def __str__(self) -> str:
        return join_host_port(self.host, self.port)


def join_host_port(host: str, port: int) -> str:
    """Join like Go's ``net.JoinHostPort``: IPv6 hosts are bracketed."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def split_host_port(addr: str) -> tuple[str, str]:
    """Split like Go's ``net.SplitHostPort``; raise AddressError on a malformed address."""
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise AddressError(f"address {addr}: missing ']' in address")
        host, rest = addr[1:end], addr[end + 1 :]
        if not rest.startswith(":"):
            raise AddressError(f"address {addr}: missing port in address")
        return host, rest[1:]
    colon = addr.rfind(":")
    if colon < 0:
        raise AddressError(f"address {addr}: missing port in address")
    host, port = addr[:colon], addr[colon + 1 :]
    if ":" in host:
        raise AddressError(f"address {addr}: too many colons in address")
    return host, port


def parse_port(addr: str, port: str) -> int:
    """Parse a decimal port (empty means 0, as in Go); raise AddressError otherwise."""
    if port == "":
        return 0
    if not port.isdigit() or int(port) > 65535:
        raise AddressError(f"address {addr}: invalid port")
    return int(port)


def _literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def resolve(addr: str) -> Endpoint:
    """Resolve ``addr`` to one endpoint, IPv4 preferred for names (like ResolveTCPAddr).

    An empty address is the wildcard with port 0, as in Go's ``net.Listen``.
    """
    if addr == "":
        return Endpoint("", 0)
    host, port_text = split_host_port(addr)
    port = parse_port(addr, port_text)
    if host in WILDCARD_HOSTS:
        return Endpoint(host, port)
    literal = _literal_ip(host)
    if literal is not None:
        return Endpoint(literal, port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AddressError(f"lookup {host}: {exc.strerror or 'no such host'}") from exc
    infos.sort(key=lambda info: 0 if info[0] == socket.AF_INET else 1)
    return Endpoint(str(infos[0][4][0]), port)


def same_listen(a: str, b: str) -> bool:
    """True when two listen strings name the same socket (all wildcards are alike)."""
    ea, eb = resolve(a), resolve(b)
    if ea.port != eb.port:
        return False
    return (ea.wildcard and eb.wildcard) or ea.host == eb.host


def bind_listener(endpoint: Endpoint) -> socket.socket:
    """Create a listening socket for ``endpoint`` (SO_REUSEADDR, like Go); raise OSError."""
    if endpoint.wildcard:
        if socket.has_ipv6:
            try:
                sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            except OSError:
                sock = None
            if sock is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(("::", endpoint.port))
                    sock.listen(socket.SOMAXCONN)
                    sock.setblocking(False)
                    return sock
                except OSError:
                    sock.close()
                    if endpoint.port != 0:
                        raise
        family, host = socket.AF_INET, "0.0.0.0"
    elif ":" in endpoint.host:
        family, host = socket.AF_INET6, endpoint.host
    else:
        family, host = socket.AF_INET, endpoint.host
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, endpoint.port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def bound_address(sock: socket.socket) -> str:
    """Print a listening socket's address as Go's ``Listener.Addr().String()`` does."""
    sockname = sock.getsockname()
    host, port = str(sockname[0]), int(sockname[1])
    if host.startswith("::ffff:"):
        host = host[len("::ffff:") :]
    return join_host_port(host, port)


def os_error_text(exc: OSError) -> str:
    """Render an OSError the way Go prints syscall errors (lower-case strerror)."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]
