"""--discovery-srv with a real DNS server: dnsmasq on a loopback port, found by petcd through
PETCD_DNS_SERVER (etcd itself asks the system resolver)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootstrap_helpers import Proc, new_procs, wait_members
from petcd.discovery import srv

from harness import ports

pytestmark = pytest.mark.skipif(shutil.which("dnsmasq") is None,
                                reason="dnsmasq not installed (apt-get install dnsmasq-base)")


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[Proc]]:
    made = new_procs(tmp_path, ["s1", "s2", "s3"])
    yield made
    for p in made:
        p.stop()


@pytest.fixture
def dns(procs: list[Proc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """dnsmasq serving petcd.test (the members, on localhost) and names.test (A records)."""
    port = ports.free_port()
    peer_ports = [int(p.peer_url.rsplit(":", 1)[1]) for p in procs]
    client_ports = [int(p.client_url.rsplit(":", 1)[1]) for p in procs]
    args = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", f"--port={port}",
            "--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file=", "--user=root",
            "--address=/localhost/127.0.0.1"]
    for i, (pp, cp) in enumerate(zip(peer_ports, client_ports, strict=True), start=1):
        args += [f"--srv-host=_etcd-server._tcp.petcd.test,localhost,{pp},{i},0",
                 f"--srv-host=_etcd-client._tcp.petcd.test,localhost,{cp},{i},0",
                 f"--srv-host=_etcd-server._tcp.names.test,m{i}.names.test,2380,{i},0",
                 f"--srv-host=_etcd-server-ssl-sfx._tcp.names.test,m{i}.names.test,2380,{i},0",
                 f"--host-record=m{i}.names.test,127.0.0.{i}"]
    log = open(tmp_path / "dnsmasq.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    server = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                srv.lookup_srv("etcd-server", "names.test", server)
                break
            except srv.SrvError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_local_member_named_and_others_numbered(dns: str) -> None:
    got = srv.initial_cluster("me", "names.test", "", ["http://127.0.0.2:2380"], dns)
    assert got == ("0=http://m1.names.test:2380,me=http://m2.names.test:2380,"
                   "1=http://m3.names.test:2380")
    ssl = srv.initial_cluster("me", "names.test", "sfx", ["https://127.0.0.3:2380"], dns)
    assert ssl == ("0=https://m1.names.test:2380,1=https://m2.names.test:2380,"
                   "me=https://m3.names.test:2380")


def test_local_member_missing(dns: str) -> None:
    with pytest.raises(srv.SrvError) as err:
        srv.initial_cluster("me", "names.test", "", ["http://127.0.0.9:2380"], dns)
    assert str(err.value) == 'cannot find local etcd member "me" in SRV records'
    with pytest.raises(srv.SrvError) as err:
        srv.initial_cluster("me", "nothing.test", "", ["http://127.0.0.1:2380"], dns)
    assert "error querying DNS SRV records for _etcd-server-ssl" in str(err.value)
    assert "error querying DNS SRV records for _etcd-server " in str(err.value)


def test_client_endpoints(dns: str, procs: list[Proc]) -> None:
    want = [p.client_url.replace("127.0.0.1", "localhost.") for p in procs]
    assert srv.client_endpoints("petcd.test", dns_server=dns) == want


def test_three_members_boot_from_srv(dns: str, procs: list[Proc], tmp_path: Path) -> None:
    for p in procs:
        p.start(tmp_path, "--discovery-srv=petcd.test", env={"PETCD_DNS_SERVER": dns})
    members = wait_members(procs[0].client_url, 3, names={"s1", "s2", "s3"})
    assert sorted(str(m["name"]) for m in members) == ["s1", "s2", "s3"]
    peer_urls = sorted(str(u) for m in members for u in list(m["peerURLs"]))  # type: ignore[call-overload]
    assert peer_urls == sorted(p.peer_url.replace("127.0.0.1", "localhost") for p in procs)


def test_no_records_is_a_startup_error(dns: str, procs: list[Proc], tmp_path: Path) -> None:
    p = procs[0]
    p.start(tmp_path, "--discovery-srv=nothing.test", env={"PETCD_DNS_SERVER": dns})
    assert p.wait_exit(30) == 1
    assert "error setting up initial cluster: error querying DNS SRV records" in \
        p.log.read_text()
