"""Run a real etcdctl binary against a set of endpoints and capture the result."""

from __future__ import annotations

import json
import os
import subprocess  # etcdctl is the real client under test: its exact CLI output is the spec
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.impls import etcdctl_35


@dataclass(frozen=True, slots=True)
class Result:
    """What one etcdctl invocation produced."""

    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def json(self) -> Any:
        """stdout parsed as JSON (for `-w json`)."""
        return json.loads(self.stdout)

    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def check(self) -> Result:
        """Return self if rc == 0, else raise with everything etcdctl printed."""
        if self.rc != 0:
            raise AssertionError(
                f"etcdctl {' '.join(self.args)} -> rc={self.rc}\n"
                f"stdout: {self.stdout}\nstderr: {self.stderr}"
            )
        return self


class Etcdctl:
    """Callable wrapper around one etcdctl binary bound to `endpoints`.

    `ctl("get", "k")` runs `etcdctl --endpoints=... get k` with a bounded wall-clock timeout and
    returns a `Result`; it never raises on a non-zero exit (use `.check()`).
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        binary: Path | None = None,
        command_timeout: str = "5s",
        timeout: float = 30.0,
        global_args: Sequence[str] = (),
    ) -> None:
        """`global_args` go before every command (e.g. `--cacert=... --cert=... --key=...`)."""
        self.binary = binary if binary is not None else etcdctl_35()
        self.endpoints = list(endpoints)
        self.command_timeout = command_timeout
        self.timeout = timeout
        self.global_args = tuple(global_args)

    def with_endpoints(self, endpoints: Sequence[str]) -> Etcdctl:
        return Etcdctl(
            endpoints, self.binary, self.command_timeout, self.timeout, self.global_args
        )

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        timeout: float | None = None,
        endpoints: Sequence[str] | None = None,
    ) -> Result:
        eps = self.endpoints if endpoints is None else list(endpoints)
        argv = [
            str(self.binary),
            f"--endpoints={','.join(eps)}",
            f"--command-timeout={self.command_timeout}",
            "--dial-timeout=2s",
            *self.global_args,
            *args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
        env["ETCDCTL_API"] = "3"
        try:
            proc = subprocess.run(
                argv,
                input=input,
                capture_output=True,
                check=False,
                text=True,
                env=env,
                timeout=self.timeout if timeout is None else timeout,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            return Result(tuple(args), -9, out, err + "\n[harness] etcdctl timed out")
        return Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)
