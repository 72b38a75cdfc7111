"""Client and peer TLS: https:// client and peer URLs with etcd's TLS flags.

Each test makes its own PKI (`harness.tlscerts`: a CA, server/client/peer pairs, and a pair
from an unrelated CA) and its own 3-member cluster whose client and peer URLs are https://.
What is compared with etcd 3.5.1 / 3.4.23 is what etcdctl 3.5.1 (and curl-like HTTP clients)
observe: commands with a CA-signed client certificate succeed on every member (writes through
followers, lease renewal and TTL through followers, membership joins over TLS peers);
connections without a certificate, with a foreign certificate or in plaintext are refused at
the handshake when --client-cert-auth is on. `--auto-tls --peer-auto-tls` clusters work with etcdctl's
`--insecure-transport=false --insecure-skip-tls-verify` and keep their self-signed pairs under the data dir.
"""

from __future__ import annotations

import datetime
import http.client
import json
import re
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from conformance.util import error_line
from harness.cluster import Member
from harness.etcdctl import Result
from harness.local import LocalCluster
from harness.tlscerts import Pki, make_pki
from tests.support.timeouts import CONVERGE

HANDSHAKE_FAILED = "authentication handshake failed"
ADDED = re.compile(r"^Member +([0-9a-f]+) added to cluster +([0-9a-f]+)$")  # etcdctl pads %16x
GRANTED = re.compile(r"^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)$")

Factory = Callable[..., LocalCluster]


def _server_flags(pki: Pki) -> tuple[str, ...]:
    return (
        f"--cert-file={pki.server.cert}",
        f"--key-file={pki.server.key}",
        f"--trusted-ca-file={pki.ca}",
        "--client-cert-auth",
        f"--peer-cert-file={pki.peer.cert}",
        f"--peer-key-file={pki.peer.key}",
        f"--peer-trusted-ca-file={pki.ca}",
        "--peer-client-cert-auth",
    )


def _client_flags(pki: Pki) -> tuple[str, ...]:
    return (f"--cacert={pki.ca}", f"--cert={pki.client.cert}", f"--key={pki.client.key}")


def _tls_cluster(factory: Factory, pki: Pki) -> LocalCluster:
    return factory(
        3,
        client_scheme="https",
        peer_scheme="https",
        extra_args=_server_flags(pki),
        ctl_args=_client_flags(pki),
    )


def _refused(res: Result) -> None:
    """etcdctl could not get through the TLS handshake (it retries until its deadline)."""
    assert res.rc != 0, res.stdout
    assert error_line(res) == "Error: context deadline exceeded", res.stderr
    assert HANDSHAKE_FAILED in res.stderr or "connection closed" in res.stderr, res.stderr


def _followers(c: LocalCluster) -> list[Member]:
    lead = c.leader()
    return [m for m in c.members if m != lead]


def test_client_cert_auth_cluster(target: str, cluster_factory: Factory, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    c = _tls_cluster(cluster_factory, pki)
    ctl = c.ctl(command_timeout="3s")
    assert ctl("put", "tls-k", "v1").check().stdout == "OK\n"
    for m in c.members:
        assert c.ctl([m])("get", "tls-k", "--print-value-only").check().stdout == "v1\n"
    health = ctl("endpoint", "health").check()
    assert health.stdout.count("is healthy: successfully committed proposal") == 3

    rows = [ln.split(", ") for ln in ctl("member", "list").check().lines()]
    assert sorted((r[2], r[3], r[4]) for r in rows) == sorted(
        (m.name, m.peer_url, m.client_url) for m in c.members
    )
    assert all(r[3].startswith("https://") and r[4].startswith("https://") for r in rows)

    # Writes and lease calls through a follower (petcd forwards to the leader's https URL).
    follower = c.ctl([_followers(c)[0]], command_timeout="3s")
    assert follower("put", "tls-f", "v2").check().stdout == "OK\n"
    granted = GRANTED.match(follower("lease", "grant", "30").check().stdout.strip())
    assert granted, "lease grant"
    lease = granted.group(1)
    keep = follower("lease", "keep-alive", "--once", lease).check()
    assert keep.stdout.strip() == f"lease {lease} keepalived with TTL(30)"
    ttl = follower("lease", "timetolive", lease).check().stdout
    assert re.fullmatch(rf"lease {lease} granted with TTL\(30s\), remaining\(\d+s\)\n", ttl)


def test_refused_without_valid_client_cert(
    target: str, cluster_factory: Factory, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    c = _tls_cluster(cluster_factory, pki)
    ep = c.members[0].client_url
    quick = {"command_timeout": "2s", "timeout": 20.0}
    no_cert = c.ctl([c.members[0]], global_args=(f"--cacert={pki.ca}",), **quick)
    _refused(no_cert("get", "k"))
    rogue = c.ctl(
        [c.members[0]],
        global_args=(f"--cacert={pki.ca}", f"--cert={pki.rogue.cert}", f"--key={pki.rogue.key}"),
        **quick,
    )
    _refused(rogue("get", "k"))
    plain = c.ctl([c.members[0]], global_args=(), **quick)
    res = plain("get", "k", endpoints=[ep.replace("https://", "http://")])
    assert res.rc != 0 and error_line(res) == "Error: context deadline exceeded"

    # HTTP on the same TLS port: /health with a client certificate, refused without.
    host, port = ep.removeprefix("https://").split(":")
    good = ssl.create_default_context(cafile=str(pki.ca))
    good.load_cert_chain(str(pki.client.cert), str(pki.client.key))
    conn = http.client.HTTPSConnection(host, int(port), context=good, timeout=10)
    conn.request("GET", "/health")
    resp = conn.getresponse()
    assert resp.status == 200
    assert json.loads(resp.read())["health"] == "true"
    conn.close()
    bare = ssl.create_default_context(cafile=str(pki.ca))
    conn = http.client.HTTPSConnection(host, int(port), context=bare, timeout=10)
    try:
        conn.request("GET", "/health")
        conn.getresponse()
    except (ssl.SSLError, ConnectionError):
        pass
    else:
        raise AssertionError("a client without a certificate got an HTTP answer")
    finally:
        conn.close()


def test_join_over_tls_peers(target: str, cluster_factory: Factory, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    c = _tls_cluster(cluster_factory, pki)
    ctl = c.ctl()
    ctl("put", "before-join", "x").check()
    planned = c.plan_member("m4")
    deadline = time.monotonic() + CONVERGE
    while True:  # etcd refuses member add until its peers have been up for a few seconds
        res = ctl("member", "add", "m4", f"--peer-urls={planned.peer_url}")
        if error_line(res) != "Error: etcdserver: unhealthy cluster":
            break
        assert time.monotonic() < deadline, "cluster stayed unhealthy"
        time.sleep(0.2)
    m = ADDED.match(res.check().stdout.splitlines()[0])
    assert m, res.stdout
    env = dict(
        ln.split("=", 1) for ln in res.stdout.splitlines()[1:] if ln and "=" in ln
    )
    c.join(planned, env["ETCD_INITIAL_CLUSTER"].strip('"'))
    joined = c.ctl([planned])
    while joined("get", "before-join", "--print-value-only").stdout != "x\n":
        assert time.monotonic() < deadline + CONVERGE, "joined member never caught up"
        time.sleep(0.2)
    c.wait_healthy(timeout=CONVERGE)


def test_auto_tls(target: str, cluster_factory: Factory) -> None:
    c = cluster_factory(
        3,
        client_scheme="https",
        peer_scheme="https",
        extra_args=("--auto-tls", "--peer-auto-tls"),
        ctl_args=("--insecure-transport=false", "--insecure-skip-tls-verify"),
    )
    ctl = c.ctl(command_timeout="3s")
    assert ctl("put", "auto", "v").check().stdout == "OK\n"
    follower = c.ctl([_followers(c)[0]], command_timeout="3s")
    granted = GRANTED.match(follower("lease", "grant", "30").check().stdout.strip())
    assert granted
    ttl = follower("lease", "timetolive", granted.group(1)).check().stdout
    assert ttl.startswith(f"lease {granted.group(1)} granted with TTL(30s)")

    for side in ("client", "peer"):
        fixtures = c.data_dir(c.members[0]) / "fixtures" / side
        cert = x509.load_pem_x509_certificate((fixtures / "cert.pem").read_bytes())
        assert (fixtures / "key.pem").stat().st_mode & 0o777 == 0o600
        org = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        assert [a.value for a in org] == ["etcd"]
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert abs(life - datetime.timedelta(days=365)) < datetime.timedelta(minutes=1)


def test_https_url_without_cert_fails(target: str, tmp_path: Path) -> None:
    c = LocalCluster(target, size=1, client_scheme="https")
    try:
        c.start()
        m = c.members[0]
        deadline = time.monotonic() + CONVERGE
        while c.is_running(m):
            assert time.monotonic() < deadline, "member with an https URL and no cert kept running"
            time.sleep(0.1)
        log = c.log_path(m).read_text()
        want = (
            "TLS key/cert (--cert-file, --key-file) must be provided for client url "
            f"{m.client_url} with HTTPS scheme"
        )
        assert want in log, c.log_tail(m)
    finally:
        c.stop()
