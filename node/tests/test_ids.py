"""Member/cluster ID derivation checked against a real etcd 3.5.1 cluster."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from petcd import ids
from petcd.goflag import parse_urls_map

from harness.impls import etcdctl_35, get_impl
from harness.ports import free_port
from tests.support.timeouts import CONVERGE
from tests.support.wait import wait_until

ETCD = get_impl("etcd-3.5")


def test_default_single_member_ids_are_etcds_well_known_ones() -> None:
    # etcd's defaults (name=default, http://localhost:2380, token etcd-cluster) give these IDs,
    # which appear throughout etcd's docs and logs.
    mid = ids.member_id(["http://localhost:2380"], "etcd-cluster")
    assert ids.format_id(mid) == "8e9e05c52164694d"
    assert ids.format_id(ids.cluster_id([mid])) == "cdf818194e3a8c32"


def test_runtime_added_member_hashes_time() -> None:
    urls = ["http://127.0.0.1:1"]
    assert ids.member_id(urls, "t", now=100) != ids.member_id(urls, "t")
    assert ids.member_id(urls, "t", now=100) == ids.member_id(urls, "t", now=100)


def test_url_order_does_not_matter_and_hex_round_trips() -> None:
    a = ids.member_id(["http://127.0.0.1:2", "http://127.0.0.1:1"], "tok")
    b = ids.member_id(["http://127.0.0.1:1", "http://127.0.0.1:2"], "tok")
    assert a == b
    assert ids.parse_id(ids.format_id(a)) == a
    assert ids.format_id(0x00AB) == "ab"
    for bad in ("", "xyz", "-1", "1" * 17):
        with pytest.raises(ValueError):
            ids.parse_id(bad)


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[tuple[str, str, list[str]]]:
    """A 3-member etcd 3.5.1 cluster on loopback; yields (initial-cluster, token, endpoints)."""
    if not ETCD.available():
        pytest.skip("etcd 3.5.1 not installed")
    token = "petcd-ids-test"
    names = ["m1", "m2", "m3"]
    peer = {n: f"http://127.0.0.1:{free_port()}" for n in names}
    client = {n: f"http://127.0.0.1:{free_port()}" for n in names}
    initial = ",".join(f"{n}={peer[n]}" for n in names)
    procs = []
    try:
        for n in names:
            log = open(tmp_path / f"{n}.log", "wb")  # noqa: SIM115 - closed with the process
            procs.append(
                subprocess.Popen(
                    [
                        str(ETCD.server),
                        f"--name={n}",
                        f"--data-dir={tmp_path / n}",
                        f"--listen-peer-urls={peer[n]}",
                        f"--initial-advertise-peer-urls={peer[n]}",
                        f"--listen-client-urls={client[n]}",
                        f"--advertise-client-urls={client[n]}",
                        f"--initial-cluster={initial}",
                        f"--initial-cluster-token={token}",
                    ],
                    stdout=log,
                    stderr=log,
                )
            )
            log.close()
        yield initial, token, list(client.values())
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def test_ids_match_real_etcd_cluster(etcd_cluster: tuple[str, str, list[str]]) -> None:
    initial, token, endpoints = etcd_cluster
    out: dict[str, object] = {}

    def member_list() -> bool:
        r = subprocess.run(
            [str(etcdctl_35()), f"--endpoints={endpoints[0]}", "member", "list", "-w", "json"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        if r.returncode != 0:
            return False
        doc = json.loads(r.stdout)
        # A member's name shows only once it has published itself; wait for all three.
        if sorted(m.get("name", "") for m in doc["members"]) != ["m1", "m2", "m3"]:
            return False
        out.update(doc)
        return True

    wait_until(member_list, CONVERGE, "etcd member list")
    got = {m["name"]: m["ID"] for m in out["members"]}  # type: ignore[attr-defined]
    want = ids.initial_member_ids(parse_urls_map(initial), token)
    assert got == want
    header = out["header"]
    assert header["cluster_id"] == ids.cluster_id(want.values())  # type: ignore[index]
