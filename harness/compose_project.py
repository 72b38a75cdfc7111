"""Compose lifecycle of one project through testcontainers' `DockerCompose`.

`ComposeProject` is testcontainers' `DockerCompose` (Compose v2, `docker compose ...`) with what
the harness needs on top: a project name of its own (`-p`), an environment of its own (the
topology's variables, not the test process's), a timeout on every command, and `run()` for
the compose commands testcontainers has no method for (`kill -s`, `ps -q`, `exec`). `start()`
is `up --detach` of `services` (or `up --wait`, which waits for every started service's
healthcheck, with `wait=True`); `stop()` is `down --volumes`; `get_service_port` and
`get_container(s)` are testcontainers' own.

Compose v2 is a CLI plugin (a Go binary, no API of its own), so every compose call is a
process, as it is inside testcontainers: `run()` is the one place the harness starts one.
testcontainers' Ryuk reaper is not used: it runs an image pulled from Docker Hub, and this
testbed has no registry (`TESTCONTAINERS_RYUK_DISABLED=true`, set below). The harness's own
teardown and leftover check (`harness.docker_control.sweep` / `leftovers`) take its place.
"""

from __future__ import annotations

import os
import subprocess  # Compose v2 is a CLI plugin with no API: run as testcontainers does
from dataclasses import dataclass, field
from pathlib import Path

from testcontainers.compose import DockerCompose

from harness.docker_control import DockerError

# Ryuk would need `docker pull testcontainers/ryuk`; there is no registry (see the docstring).
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

CLI_TIMEOUT = 120.0


@dataclass
class ComposeProject(DockerCompose):  # type: ignore[misc]  # testcontainers is untyped here
    """One compose project: `files` (the base file first) under `project`, with `env` as the
    whole environment of every compose command and `env_file` instead of compose/.env."""

    project: str = ""
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = CLI_TIMEOUT
    up_args: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, files: list[Path], project: str, env: dict[str, str], env_file: Path,
           services: list[str] | None = None, wait: bool = False,
           up_args: list[str] | None = None) -> ComposeProject:
        return cls(context=str(files[0].parent), compose_file_name=[str(f) for f in files],
                   env_file=str(env_file), services=services, wait=wait, project=project,
                   env=env, up_args=list(up_args or []))

    @property
    def compose_command_property(self) -> list[str]:
        # testcontainers' command (docker compose -f ... --env-file ...) plus our project name.
        return [*super().compose_command_property, "-p", self.project]

    def _run_command(self, cmd: str | list[str],
                     context: str | None = None) -> subprocess.CompletedProcess[bytes]:
        # testcontainers runs compose with the test process's environment and no timeout; a
        # project's commands get its own environment and CLI_TIMEOUT (see the module docstring).
        args = [cmd] if isinstance(cmd, str) else list(cmd)
        res = self._exec(args, context or str(self.context), self.timeout)
        if res.returncode != 0:
            raise DockerError(f"{' '.join(args)} -> rc={res.returncode}\n"
                              f"{res.stderr.decode(errors='replace').strip()}")
        return res

    def _exec(self, args: list[str], cwd: str,
              timeout: float) -> subprocess.CompletedProcess[bytes]:
        try:
            # Compose v2 is a CLI plugin with no API: it can only be run as a process.
            return subprocess.run(args, check=False, capture_output=True, cwd=cwd,
                                  env=self.env, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise DockerError(f"{' '.join(args)}: timed out after {timeout}s") from e
        except FileNotFoundError as e:
            raise DockerError(f"{args[0]}: not installed") from e

    def start(self) -> None:
        """`up` (detached, or `--wait` for healthchecks) of `services`, with `up_args`."""
        up = [*self.compose_command_property, "up", "--wait" if self.wait else "--detach",
              *self.up_args, *(self.services or [])]
        self._run_command(up)

    def run(self, *args: str, timeout: float | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Any compose command on this project (text output)."""
        cmd = [*self.compose_command_property, *args]
        res = self._exec(cmd, str(self.context), self.timeout if timeout is None else timeout)
        out = subprocess.CompletedProcess(res.args, res.returncode,
                                          res.stdout.decode(errors="replace"),
                                          res.stderr.decode(errors="replace"))
        if check and res.returncode != 0:
            raise DockerError(f"{' '.join(cmd)} -> rc={res.returncode}\n{out.stderr.strip()}")
        return out

    def container_id(self, service: str) -> str:
        """The id of the service's container (running or not); "" if it has none."""
        return self.run("ps", "-a", "-q", service).stdout.strip()

    def down(self, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        """`down` with volumes and orphans, never raising (teardown sweeps after it)."""
        return self.run("down", "-v", "--remove-orphans", "-t", "2", timeout=timeout,
                        check=False)
