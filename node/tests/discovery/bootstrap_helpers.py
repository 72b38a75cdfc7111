"""Real petcd member processes for the discovery and DNS SRV bootstrap tests."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import ports

PETCD = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "petcd"


@dataclass
class Proc:
    name: str
    client_url: str
    peer_url: str
    log: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, root: Path, *flags: str, env: dict[str, str] | None = None) -> None:
        cmd = [str(PETCD), f"--name={self.name}", f"--data-dir={root / self.name}",
               f"--listen-client-urls={self.client_url}",
               f"--advertise-client-urls={self.client_url}",
               f"--listen-peer-urls={self.peer_url}",
               f"--initial-advertise-peer-urls={self.peer_url}", *flags]
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          env={**os.environ, **(env or {})})

    def wait_exit(self, timeout: float) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def new_procs(root: Path, names: list[str]) -> list[Proc]:
    return [Proc(n, f"http://127.0.0.1:{ports.free_port()}",
                 f"http://127.0.0.1:{ports.free_port()}", root / f"{n}.log") for n in names]


def get(url: str, path: str, timeout: float = 5) -> tuple[int, bytes]:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def put(url: str, path: str, value: str) -> int:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("PUT", path, body=f"value={value}",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        return conn.getresponse().status
    finally:
        conn.close()


def wait_members(url: str, n: int, timeout: float = 60, names: set[str] | None = None
                 ) -> list[dict[str, object]]:
    """Poll the v3 JSON gateway's member list until `n` started members are listed (with
    exactly `names`, when given: members publish their names after they start)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            host, _, port = url.removeprefix("http://").partition(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            conn.request("POST", "/v3/cluster/member/list", body="{}",
                         headers={"Content-Type": "application/json"})
            doc = json.loads(conn.getresponse().read())
            conn.close()
            members = doc.get("members", [])
            last = members
            got = {m.get("name") for m in members}
            if len(members) == n and all(got) and (names is None or got == names):
                return list(members)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"cluster at {url} did not show {n} started members: {last}")
