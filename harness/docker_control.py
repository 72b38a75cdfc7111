"""Container control through the docker SDK for Python (the Engine API over its socket).

Everything the Docker backend does to single containers, networks, volumes and images goes
through here: state and logs, signals (kill with any signal, SIGSTOP/SIGCONT for pause/resume),
start/stop/restart, exec, network connect/disconnect, `run` of members joined later, and the
label-based leftover sweep. Compose lifecycle lives in `harness.compose_project`.

Contracts:
- Every call raises `DockerError` (a `ClusterError`) on an Engine API failure, with what was
  asked; "not found" answers become `None`/`False`/"absent" where the docstring says so.
- One client per process (the SDK's client is thread-safe over a connection pool); calls time
  out after `API_TIMEOUT` seconds, so a wedged engine fails a test instead of hanging it.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from harness.cluster import ClusterError

API_TIMEOUT = 120


class DockerError(ClusterError):
    """A docker Engine API call or a compose command failed."""


@functools.cache
def client() -> Any:  # docker.DockerClient; the SDK ships no type hints
    """The process's docker client (from DOCKER_HOST etc., as the CLI would)."""
    return docker.from_env(timeout=API_TIMEOUT)


def engine_available() -> str | None:
    """None if a Docker engine answers and the CLI compose needs exists, else why not."""
    if shutil.which("docker") is None:
        # Compose v2 is a docker CLI plugin: without the CLI there is no `docker compose`.
        return "no docker CLI on PATH"
    try:
        client().ping()
    except Exception as e:  # noqa: BLE001 - any failure to reach the engine is a skip reason
        client.cache_clear()
        return f"docker engine not reachable: {str(e)[:200]}"
    return None


def _api(what: str, call: Any, *args: Any, **kw: Any) -> Any:
    try:
        return call(*args, **kw)
    except docker.errors.DockerException as e:
        raise DockerError(f"{what}: {e}") from e


def image_exists(image: str) -> bool:
    try:
        client().images.get(image)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.DockerException as e:
        raise DockerError(f"inspect image {image}: {e}") from e
    return True


def _container(cid: str) -> Any | None:
    try:
        return client().containers.get(cid)
    except docker.errors.NotFound:
        return None
    except docker.errors.DockerException as e:
        raise DockerError(f"inspect container {cid}: {e}") from e


def inspect(cid: str) -> dict[str, Any] | None:
    """The container's inspect document, or None if it does not exist."""
    c = _container(cid)
    return None if c is None else dict(c.attrs)


def state(cid: str) -> tuple[bool, int, str]:
    """(running, exit code, status) of a container; (False, 0, "absent") if it is gone."""
    info = inspect(cid)
    if info is None:
        return False, 0, "absent"
    st = info.get("State", {})
    return bool(st.get("Running")), int(st.get("ExitCode", 0)), str(st.get("Status", "?"))


def health(cid: str) -> str | None:
    """The healthcheck status ("starting", "healthy", "unhealthy"), None without one."""
    info = inspect(cid) or {}
    h = info.get("State", {}).get("Health")
    return None if not h else str(h.get("Status"))


def logs(cid: str, lines: int = 30) -> str:
    c = _container(cid)
    if c is None:
        return "(no container)"
    out = _api(f"logs of {cid}", c.logs, tail=lines, stdout=True, stderr=True)
    return bytes(out).decode(errors="replace").strip() or "(empty log)"


def signal(cid: str, sig: str) -> bool:
    """Send `sig` ("KILL", "STOP", "CONT", "TERM", ...) to the container's main process.
    False if the container is not running (the engine refuses), True once sent."""
    c = _container(cid)
    if c is None:
        return False
    try:
        c.kill(signal=sig)
    except docker.errors.APIError as e:
        if e.status_code == 409:  # not running
            return False
        raise DockerError(f"kill -s {sig} {cid}: {e}") from e
    return True


def start(cid: str) -> None:
    c = _container(cid)
    if c is None:
        raise DockerError(f"start {cid}: no such container")
    _api(f"start {cid}", c.start)


def stop(cid: str, grace: int) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds (the engine's stop)."""
    c = _container(cid)
    if c is not None:
        _api(f"stop {cid}", c.stop, timeout=grace)


def restart(cid: str, grace: int) -> None:
    c = _container(cid)
    if c is None:
        raise DockerError(f"restart {cid}: no such container")
    _api(f"restart {cid}", c.restart, timeout=grace)


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What a command run in a container returned (the fields of a CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


def exec_in(cid: str, *cmd: str) -> ExecResult:
    """Run `cmd` inside the container (no stdin, no tty) and wait for it."""
    c = _container(cid)
    if c is None:
        raise DockerError(f"exec in {cid}: no such container")
    res = _api(f"exec {' '.join(cmd)} in {cid}", c.exec_run, list(cmd), stdin=False, tty=False,
               demux=True)
    out, err = res.output if res.output is not None else (None, None)
    return ExecResult(int(res.exit_code), (out or b"").decode(errors="replace"),
                      (err or b"").decode(errors="replace"))


def networks_of(cid: str) -> list[str]:
    """Names of the networks the container is attached to."""
    info = inspect(cid) or {}
    return sorted(info.get("NetworkSettings", {}).get("Networks", {}) or {})


def connect(network: str, cid: str, ip: str | None = None) -> None:
    net = _api(f"network {network}", client().networks.get, network)
    _api(f"connect {cid} to {network}", net.connect, cid, ipv4_address=ip)


def disconnect(network: str, cid: str) -> None:
    net = _api(f"network {network}", client().networks.get, network)
    _api(f"disconnect {cid} from {network}", net.disconnect, cid, force=True)


def run_member(image: str, name: str, hostname: str, network: str, ip: str, host_port: int, volume: str,
               env: dict[str, str], hosts: dict[str, str], dns: list[str],
               labels: dict[str, str]) -> str:
    """`docker run -d` of one server container on `network` at `ip`, client port published on
    127.0.0.1:`host_port`, data volume at /var/lib/etcd; returns the container id. It is created
    unattached and then connected with its fixed address (the SDK's run takes no address)."""
    kw: dict[str, Any] = {
        "name": name, "hostname": hostname, "detach": True, "environment": env,
        "ports": {"2379/tcp": ("127.0.0.1", host_port)},
        "volumes": {volume: {"bind": "/var/lib/etcd"}},
        "extra_hosts": hosts, "labels": labels, "restart_policy": {"Name": "no"}}
    if dns:
        kw["dns"] = dns
    c = _api(f"create {name}", client().containers.create, image, network=network, **kw)
    try:
        net = client().networks.get(network)
        net.disconnect(c.id, force=True)
        net.connect(c.id, ipv4_address=ip)
        c.start()
    except docker.errors.DockerException as e:
        remove_containers([c.id])
        raise DockerError(f"start {name} at {ip} on {network}: {e}") from e
    return str(c.id)


def remove_containers(cids: list[str]) -> None:
    """Force-remove containers with their anonymous volumes (missing ones are fine)."""
    for cid in cids:
        c = _container(cid)
        if c is not None:
            try:
                c.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass


def remove_volume(name: str) -> None:
    try:
        client().volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


def labelled(project: str) -> tuple[list[str], list[str], list[str]]:
    """(container ids, network ids, volume names) carrying compose's project label."""
    flt = {"label": f"com.docker.compose.project={project}"}
    cs = [c.id for c in client().containers.list(all=True, filters=flt)]
    ns = [n.id for n in client().networks.list(filters=flt)]
    vs = [v.name for v in client().volumes.list(filters=flt)]
    return cs, ns, vs


def sweep(project: str) -> None:
    """Remove whatever compose left of `project` (e.g. after a failed `up`), by its label."""
    cs, ns, vs = labelled(project)
    remove_containers(cs)
    for nid in ns:
        try:
            client().networks.get(nid).remove()
        except docker.errors.NotFound:
            pass
    for v in vs:
        remove_volume(v)


def leftovers(project: str) -> list[str]:
    """Containers, networks and volumes of `project` that still exist: labelled by compose, or
    named `<project>-...` / `<project>_...` (members joined with `run_member`)."""
    cs, ns, vs = labelled(project)
    named = [c.id for c in client().containers.list(all=True, filters={"name": f"^/{project}-"})]
    vols = [v.name for v in client().volumes.list(filters={"name": f"^{project}_"})]
    return sorted({*cs, *named, *ns, *vs, *vols})
