"""The ``disk-full`` nemesis: one member's data dir runs out of space, then space returns.

Contract:
- ``prepare(cluster)`` runs before the cluster starts (the runner calls it for every nemesis
  that has it): it mounts a ``SIZE`` tmpfs on the data dir of the last member. It refuses with
  ``ClusterError`` before any load when it cannot: the cluster is not local processes (the data
  dir must be on this machine), or the mount fails (needs root);
- ``inject`` fills that filesystem to the last byte with a filler file and returns at once;
  the member, like etcd, ends itself with one fatal record when a write cannot be made durable
  (docs/ARCHITECTURE.md, "Fatal errors and hostile input");
- ``heal`` deletes the filler (space returns); if the member exited, it records the exit code
  and the fatal record in the fault's detail (so ``nemesis.json`` shows them) and restarts it on
  its data: nothing it acknowledged may be missing, which the workload's checker verifies;
- ``release(cluster)`` unmounts after the cluster stopped (always called by the runner).
"""

from __future__ import annotations

import errno
import os
import random
import subprocess  # mount/umount: the nemesis changes this machine's filesystems
from pathlib import Path

from harness.cluster import Cluster, ClusterError, Member
from harness.local import LocalCluster
from jepsen_style.nemesis import Fault, Nemesis

SIZE = "100m"  # etcd preallocates a 64 MB WAL segment
CHUNK = 1 << 20


class DiskFullNemesis(Nemesis):
    name = "disk-full"

    def __init__(self) -> None:
        self.member: Member | None = None
        self.mount: Path | None = None
        self.filler: Path | None = None
        self.fault: Fault | None = None

    def _local(self, cluster: Cluster) -> LocalCluster:
        if not isinstance(cluster, LocalCluster):
            raise ClusterError(f"disk-full needs the member's data dir on this machine "
                               f"(local backend), not {type(cluster).__name__}")
        return cluster

    def prepare(self, cluster: Cluster) -> None:
        local = self._local(cluster)
        m = local.members[-1]
        d = local.data_dir(m)
        d.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(d)],
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ClusterError(f"disk-full: cannot mount a tmpfs on {d} (needs root): "
                               f"{res.stderr.strip()}")
        self.member, self.mount = m, d

    def release(self, cluster: Cluster) -> None:
        if self.mount is not None:
            subprocess.run(["umount", "-l", str(self.mount)], capture_output=True, check=False)
            self.mount = None

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        if self.member is None or self.mount is None:
            raise ClusterError("disk-full: prepare() did not run before the cluster started")
        self.filler = self.mount / "disk-full.filler"
        written, size = 0, CHUNK
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while True:  # bounded by the filesystem's size
                try:
                    written += os.write(fd, b"\0" * size)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    if size > 4096:
                        size = 4096  # fill the last MiB page by page
                        continue
                    break
        finally:
            os.close(fd)
        self.fault = self._fault(f"disk-full {self.member.name}: filler {written} bytes, "
                                 f"{SIZE} tmpfs full", [self.member])
        return self.fault

    def heal(self, cluster: Cluster) -> None:
        if self.filler is None or self.member is None:
            return
        local = self._local(cluster)
        self.filler.unlink(missing_ok=True)
        self.filler = None
        m = self.member
        note = ""
        if not local.is_running(m):
            rc = _exit_code(local, m)
            fatal = [ln for ln in local.log_path(m).read_text(errors="replace").splitlines()
                     if '"level":"fatal"' in ln or '"level":"panic"' in ln]
            note = (f"; {m.name} exited rc={rc}, fatal: {fatal[-1][:300] if fatal else 'none'}"
                    f"; space freed, {m.name} restarted")
            local.start_member(m)
        else:
            note = f"; {m.name} still running when space was freed"
        if self.fault is not None:
            self.fault.detail += note


def _exit_code(local: LocalCluster, m: Member) -> int | None:
    proc = local._procs.get(m.name)  # the exit status of a child the cluster started
    if proc is not None and proc.popen is not None:
        return proc.popen.poll()
    return None
