"""Client processes a test talks to line by line: `Proc` (stdout lines read with deadlines)
and lockctl, the script that drives petcd's or etcd's v3lock/v3election gRPC services.

lockctl runs in a subprocess because its generated stubs must not share a process with aetcd
(both register the etcdserverpb protobuf package).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.timeouts import SETTLE

LOCKCTL = Path(__file__).resolve().parents[2] / "node" / "tests" / "concurrency" / "lockctl.py"
"""`lockctl.py ENDPOINT OP JSON-ARGS`: one Lock/Election call, its answer as one JSON line."""

QUIET_WINDOW = 0.5
"""How long a waiter must stay silent once its key is visible, to count as still waiting."""


class Proc:
    """A running client process whose stdout lines are read with deadlines."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.p = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True
        )
        assert self.p.stdout is not None
        self._fd = self.p.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._fd, selectors.EVENT_READ)
        self._eof = False

    def _fill(self, timeout: float) -> None:
        if self._eof or not self._sel.select(max(timeout, 0.0)):
            return
        chunk = os.read(self._fd, 65536)
        if chunk:
            self._buf += chunk
        else:
            self._eof = True

    def line(self, timeout: float = SETTLE) -> str:
        """The next stdout line (without newline); fails with the stderr after `timeout`."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._eof:
                self.close()
                raise AssertionError(
                    f"{self.argv[1:]}: no line within {timeout}s (eof={self._eof}); "
                    f"stdout so far {self._buf!r}; stderr {self.stderr()!r}"
                )
            self._fill(remaining)
        raw, self._buf = self._buf.split(b"\n", 1)
        return raw.decode()

    def silent_for(self, window: float = QUIET_WINDOW) -> bool:
        """True if no output arrives within `window` seconds."""
        deadline = time.monotonic() + window
        while not self._buf and not self._eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            self._fill(remaining)
        return False

    def signal(self, sig: int) -> None:
        self.p.send_signal(sig)

    def wait(self, timeout: float = SETTLE) -> int:
        return self.p.wait(timeout)

    def exits_ok(self, timeout: float = SETTLE) -> None:
        """Wait for the process to exit and check it exited 0."""
        rc = self.p.wait(timeout)
        assert rc == 0, f"{self.argv[1:]} -> rc={rc}: {self.stderr()!r}"

    def stderr(self) -> str:
        if self.p.poll() is None:
            return ""
        assert self.p.stderr is not None
        return self.p.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(SETTLE)
        self._sel.close()
        for f in (self.p.stdout, self.p.stderr):
            if f is not None:
                f.close()


def start_lockctl(client_url: str, op: str, **args: Any) -> Proc:
    """lockctl running `op` with `args` against the member serving `client_url`."""
    endpoint = client_url.split("://", 1)[-1]
    return Proc([sys.executable, str(LOCKCTL), endpoint, op, json.dumps(args)])


def ok_response(doc: dict[str, Any]) -> dict[str, Any]:
    """The response of a lockctl answer that must have succeeded: {"ok": response}."""
    if "ok" not in doc:
        raise AssertionError(f"lockctl failed: {doc}")
    resp: dict[str, Any] = doc["ok"]
    return resp
