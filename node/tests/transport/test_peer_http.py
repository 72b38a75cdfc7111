"""The HTTP responder on the peer port and fetch_members, against petcd and real etcd 3.5.1."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from petcd import ids
from petcd.logutil import new_logger
from petcd.transport import MembersError, PeerTransport, fetch_members

from harness.impls import get_impl
from harness.ports import free_port

MEMBERS = [
    {
        "id": 10221683743416816908,
        "name": "s1",
        "peerURLs": ["http://127.0.0.1:1"],
        "clientURLs": ["http://127.0.0.1:2"],
    },
    {"id": 5, "name": "", "peerURLs": ["http://127.0.0.1:3"], "clientURLs": [], "isLearner": True},
]


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_http_endpoints_on_the_peer_port() -> None:
    async def main() -> None:
        port = free_port()
        t = PeerTransport(
            7,
            0x8C2FF40632FD55CA,
            [f"http://127.0.0.1:{port}"],
            lambda m: None,
            new_logger(stream=io.StringIO()),
            members=lambda: MEMBERS,
        )
        await t.start()
        try:
            base = f"http://127.0.0.1:{port}"
            status, headers, body = await asyncio.to_thread(_get, base + "/members")
            assert status == 200
            assert headers["X-Etcd-Cluster-Id"] == "8c2ff40632fd55ca"
            assert headers["Content-Type"] == "application/json"
            # etcd's JSON: id as a number, empty name/clientURLs omitted, isLearner only if true
            assert json.loads(body) == [
                MEMBERS[0],
                {"id": 5, "peerURLs": ["http://127.0.0.1:3"], "isLearner": True},
            ]
            assert body.startswith(b'[{"id":10221683743416816908,"peerURLs":')

            status, _, body = await asyncio.to_thread(_get, base + "/version")
            # byte for byte what etcd 3.5.1's peer port answers (see the real-etcd test below)
            assert (status, body) == (200, b'{"etcdserver":"3.5.1","etcdcluster":"3.5.0"}')
            status, _, body = await asyncio.to_thread(_get, base + "/health")
            assert status == 200 and json.loads(body)["health"] == "true"
            status, _, body = await asyncio.to_thread(_get, base + "/nope")
            assert (status, body) == (404, b"404 page not found\n")
            status, headers, _ = await asyncio.to_thread(_get, base + "/members", "POST")
            assert status == 405 and headers["Allow"] == "GET"

            cid, members = await fetch_members(["http://127.0.0.1:1", base])
            assert cid == 0x8C2FF40632FD55CA
            assert [m["id"] for m in members] == [10221683743416816908, 5]
            with pytest.raises(MembersError, match="could not retrieve cluster information"):
                await fetch_members([f"http://127.0.0.1:{free_port()}"], timeout=1)
        finally:
            await t.stop()

    asyncio.run(main())


@pytest.fixture
def etcd_single(tmp_path: Path) -> Iterator[tuple[str, str]]:
    etcd = get_impl("etcd-3.5")
    if not etcd.available():
        pytest.skip("etcd 3.5.1 not installed")
    peer, client = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    with open(tmp_path / "etcd.log", "wb") as log:
        proc = subprocess.Popen(
            [
                str(etcd.server),
                "--name=s1",
                f"--data-dir={tmp_path / 'd'}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=s1={peer}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(client + "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("etcd did not become healthy")
            time.sleep(0.1)
        yield peer, client
    finally:
        proc.terminate()
        proc.wait(10)


def test_fetch_members_from_real_etcd(etcd_single: tuple[str, str]) -> None:
    peer, client = etcd_single
    cid, members = asyncio.run(fetch_members([peer]))
    mid = ids.member_id([peer], "etcd-cluster")
    assert cid == ids.cluster_id([mid])
    want: list[dict[str, Any]] = [
        {"id": mid, "peerURLs": [peer], "name": "s1", "clientURLs": [client]}
    ]
    assert members == want
    # and the petcd responder's /version body matches etcd's peer /version byte for byte
    assert _get(peer + "/version")[2] == b'{"etcdserver":"3.5.1","etcdcluster":"3.5.0"}'
