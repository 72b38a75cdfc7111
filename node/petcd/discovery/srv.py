"""DNS SRV bootstrap (`--discovery-srv DOMAIN`, `--discovery-srv-name SUFFIX`), as etcd 3.5.

`dns_cluster(name, domain, suffix, advertise_peer_urls)` builds the initial cluster string:
it looks up `_etcd-server-ssl<-suffix>._tcp.DOMAIN` (https peers) and
`_etcd-server<-suffix>._tcp.DOMAIN` (http peers); each SRV target:port is resolved to an
address and compared with the resolved advertise peer URLs: the match is named after this
member, the others "0", "1", ... in answer order (per service, as etcd's counter). URLs keep
the SRV target name. `client_endpoints(domain, suffix)` is etcdctl's `--discovery-srv`: the
`_etcd-client-ssl` / `_etcd-client` records as https:// and http:// endpoints.

Resolver: the system's (as etcd), unless `dns_server` (PETCD_DNS_SERVER) names one to
ask instead (tests run dnsmasq on a loopback port); that server then also resolves the SRV
targets. Errors are etcd's texts ("error querying DNS SRV records for _etcd-server ...",
"cannot find local etcd member ... in SRV records").
"""

from __future__ import annotations

import ipaddress
import random
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import dns.exception
import dns.rdtypes.IN.SRV
import dns.resolver

from petcd import errors


class SrvError(Exception):
    """A lookup failed; `str()` is etcd's wording."""


@dataclass(frozen=True, slots=True)
class SrvRecord:
    target: str
    port: int
    priority: int
    weight: int


def _resolver(server: str) -> dns.resolver.Resolver:
    if not server:
        return dns.resolver.Resolver()
    host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "53")
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [host or server]
    r.port = int(port or 53)
    r.lifetime = 5.0
    return r


def _order(records: list[SrvRecord]) -> list[SrvRecord]:
    """RFC 2782 order as Go's net.LookupSRV: by priority, weighted shuffle within one."""
    out: list[SrvRecord] = []
    for prio in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == prio]
        while group:
            total = sum(r.weight for r in group)
            if total == 0:
                out.extend(group)
                break
            pick = random.randint(0, total - 1)
            for i, r in enumerate(group):
                pick -= r.weight
                if pick < 0:
                    out.append(group.pop(i))
                    break
    return out


def lookup_srv(service: str, domain: str, dns_server: str = "") -> list[SrvRecord]:
    """`_service._tcp.domain` SRV records, ordered; SrvError with the resolver's complaint."""
    qname = f"_{service}._tcp.{domain.rstrip('.')}."
    try:
        answer = _resolver(dns_server).resolve(qname, "SRV")
    except (dns.exception.DNSException, OSError) as exc:
        raise SrvError(errors.SRV_LOOKUP.format(name=qname, error=exc)) from None
    recs = [
        SrvRecord(str(a.target), int(a.port), int(a.priority), int(a.weight))
        for a in answer
        if isinstance(a, dns.rdtypes.IN.SRV.SRV)
    ]
    return _order(recs)


def resolve_host(host: str, dns_server: str = "") -> str:
    """One IP address for `host` (IP literals as they are)."""
    h = host.rstrip(".")
    try:
        return str(ipaddress.ip_address(h.strip("[]")))
    except ValueError:
        pass
    if dns_server:
        try:
            return str(_resolver(dns_server).resolve(h + ".", "A")[0])
        except (dns.exception.DNSException, OSError, IndexError):
            pass  # fall back to the system resolver (e.g. "localhost" from /etc/hosts)
    try:
        return socket.gethostbyname(h)
    except OSError as exc:
        raise SrvError(errors.SRV_LOOKUP_HOST.format(name=h, error=exc)) from None


def _tcp_addr(host: str, port: int, dns_server: str) -> str:
    ip = resolve_host(host, dns_server)
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def get_cluster(scheme: str, service: str, name: str, domain: str,
                advertise_peer_urls: list[str], dns_server: str = "") -> list[str]:
    """etcd's srv.GetCluster: ["name=scheme://target:port", ...] for one service."""
    by_addr: dict[str, str] = {}
    for u in advertise_peer_urls:
        p = urlsplit(u)
        by_addr[_tcp_addr(p.hostname or "", p.port or 80, dns_server)] = u
    try:
        records = lookup_srv(service, domain, dns_server)
    except SrvError as exc:
        raise SrvError(errors.SRV_QUERY.format(service=service, error=exc)) from None
    parts: list[str] = []
    temp = 0
    err: str | None = None
    for rec in records:
        try:
            addr = _tcp_addr(rec.target, rec.port, dns_server)
        except SrvError as exc:
            err = str(exc)
            continue
        local = by_addr.get(addr)
        if local is not None:
            n = name
        else:
            n = str(temp)
            temp += 1
        url_host = _join(rec.target.rstrip("."), rec.port)
        if local is not None and urlsplit(local).scheme != scheme:
            err = errors.SRV_SCHEME_MISMATCH.format(
                scheme=scheme, host=url_host, service=service, local=local
            )
            continue
        parts.append(f"{n}={scheme}://{url_host}")
    if not parts:
        raise SrvError(
            errors.SRV_QUERY.format(service=service, error=err or errors.SRV_NO_RECORDS)
        )
    return parts


def dns_cluster(name: str, domain: str, suffix: str, advertise_peer_urls: list[str],
                dns_server: str = "") -> tuple[list[str], list[str]]:
    """(cluster entries, errors) from both server services, as etcd's GetDNSClusterNames."""
    sfx = f"-{suffix}" if suffix else ""
    out: list[str] = []
    errs: list[str] = []
    for scheme, service in (("https", f"etcd-server-ssl{sfx}"), ("http", f"etcd-server{sfx}")):
        try:
            out += get_cluster(scheme, service, name, domain, advertise_peer_urls, dns_server)
        except SrvError as exc:
            errs.append(str(exc))
    return out, errs


def initial_cluster(name: str, domain: str, suffix: str, advertise_peer_urls: list[str],
                    dns_server: str = "") -> str:
    """The --initial-cluster string the SRV records give; SrvError as etcd words it."""
    entries, errs = dns_cluster(name, domain, suffix, advertise_peer_urls, dns_server)
    if not entries:
        raise SrvError("; ".join(errs) or errors.SRV_NO_RECORDS_FOR.format(domain=domain))
    if not any(e.partition("=")[0] == name for e in entries):
        raise SrvError(errors.SRV_LOCAL_MISSING.format(name=name))
    return ",".join(entries)


def client_endpoints(domain: str, suffix: str = "", dns_server: str = "") -> list[str]:
    """etcdctl --discovery-srv: https endpoints from `_etcd-client-ssl`, http from
    `_etcd-client` (either may be missing, not both)."""
    sfx = f"-{suffix}" if suffix else ""
    urls: list[str] = []
    errs: list[str] = []
    for scheme, service in (("https", f"etcd-client-ssl{sfx}"), ("http", f"etcd-client{sfx}")):
        try:
            recs = lookup_srv(service, domain, dns_server)
        except SrvError as exc:
            errs.append(str(exc))
            continue
        urls += [f"{scheme}://{_join(r.target, r.port)}" for r in recs]
    if len(errs) == 2:
        raise SrvError(errors.SRV_LOOKUP_ERRORS.format(first=errs[0], second=errs[1]))
    return urls
