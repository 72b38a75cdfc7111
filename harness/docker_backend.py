"""Docker cluster backend: every member is a container on a private bridge network.

The initial members come from `compose/docker-compose.yml` (the same topology people start with
`compose/compose.sh`), run under a project name and a /24 subnet of their own, so clusters of
parallel tests (pytest-xdist) never share containers, networks, volumes or host ports. Members
joined later (`plan_member` + `join`) are plain `docker run` containers on the same network.

Container control (state, logs, signals, start/stop, exec, network connect/disconnect, `run`
of joined members, the leftover sweep) goes through the docker SDK (`harness.docker_control`);
compose lifecycle (up, down with volumes, ps, kill) through testcontainers' DockerCompose
(`harness.compose_project`). `image=` (or an `image:NAME[:TAG]` implementation) runs any
etcd-compatible server image that takes etcd's `ETCD_*` variables.

Members' client URLs are `http://127.0.0.1:<port>` (ports from `harness.ports`, published on
loopback and fixed for the cluster's lifetime, so they survive member restarts); peer URLs are the
members' fixed container addresses. Health and leadership are observed through the client API,
exactly as for local processes (see `harness.cluster`).

Invariants:
- `stop()` removes every container, network and volume of the project, whatever state the
  members are in and however `start()` failed; it is safe to call twice.
- A member the harness did not kill or stop that exits on its own makes `_check_alive` raise
  with the container's log tail (the containers run with restart policy "no").
- `pause` sends SIGSTOP to the container's main process, which is the server itself in every
  image (exec-form CMD); `resume` sends SIGCONT.

With `proxied=True` the cluster also uses `compose/docker-compose.toxiproxy.yml`: peer URLs are
`http://nodeN.peer:2380` (with "dns" the SRV targets `http://nodeN.<domain>:2380`), each name
mapped per member by `extra_hosts` to that member's own link proxies, so every directed peer link and every client port goes through a Toxiproxy
container, and `link(src, dst)`, `client_link(member)`, `isolate(member)` and `heal()` control
them (see `harness.toxiproxy_links`). Members' `client_url`s stay direct, so a test can still
talk to a member whose links are cut; `proxied_client_url(member)` goes through the proxy.
The overlay works with every bootstrap: with "discovery" and "dns" it sets no initial cluster,
so the members still find each other only through the discovery service or the SRV records.

`bootstrap` picks how the three compose members find each other, each a topology file of its own:
- "static" (default): `compose/docker-compose.yml`, ETCD_INITIAL_CLUSTER of the fixed addresses.
- "discovery": `compose/docker-compose.discovery.yml`, a one-member v2 discovery service of
  `discovery_impl` (any implementation; default etcd-3.5) at `<prefix>.10`, a one-shot init
  that PUTs the token's `_config/size`, and members booting with ETCD_DISCOVERY only. The token
  is the cluster's `token`; `discovery_url` is the URL the members use.
- "dns": `compose/docker-compose.dns.yml`, dnsmasq at `<prefix>.53` serving A records for
  `nodeN.<domain>` and the `_etcd-server._tcp` / `_etcd-client._tcp` SRV records; members use it
  through compose's `dns:` and boot with ETCD_DISCOVERY_SRV. Their peer URLs are
  `http://nodeN.<domain>:2380` (the SRV targets), which resolve to the fixed addresses.
Every bootstrap yields the same members on the same addresses; membership changes, faults and
teardown work alike. The auxiliary containers (discovery service, DNS server) must keep running:
`_check_alive` reports one that exits.
"""

from __future__ import annotations

import os
import random
import re
import subprocess  # images/build.sh (a shell script) only; containers go through the SDK
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from harness import docker_control as dc
from harness import ports
from harness.cluster import Cluster, ClusterError, Member
from harness.compose_project import ComposeProject
from harness.docker_control import DockerError, engine_available, image_exists
from harness.impls import REPO_ROOT, Impl, get_impl, image_of
from harness.toxiproxy_links import Link, ToxiproxyLinks, client_link_name, link_name

if TYPE_CHECKING:
    from harness.link_faults import LinkFaults

COMPOSE_FILE = REPO_ROOT / "compose" / "docker-compose.yml"
# The topology file of each bootstrap (see the module docstring).
BOOTSTRAP_FILES = {
    "static": COMPOSE_FILE,
    "discovery": REPO_ROOT / "compose" / "docker-compose.discovery.yml",
    "dns": REPO_ROOT / "compose" / "docker-compose.dns.yml",
}
BOOTSTRAPS = tuple(BOOTSTRAP_FILES)
# Services of the bootstrap that run beside the members (and must keep running).
BOOTSTRAP_SERVICES: dict[str, tuple[str, ...]] = {"static": (), "discovery": ("discovery",),
                                                  "dns": ("dns",)}
DISCOVERY_HOST = 10  # the discovery service is <prefix>.10
DNS_HOST = 53  # dnsmasq is <prefix>.53
DNS_DOMAIN = "petcd.test"
TOXIPROXY_FILE = REPO_ROOT / "compose" / "docker-compose.toxiproxy.yml"
TOXIPROXY5_FILE = REPO_ROOT / "compose" / "docker-compose.toxiproxy5.yml"  # node4, node5
# An env file without variables, so compose/.env (written by compose.sh) is not read.
NO_ENV_FILE = REPO_ROOT / "compose" / "no-defaults.env"
BUILD_SCRIPT = REPO_ROOT / "images" / "build.sh"

IMAGES: dict[str, str] = {
    "petcd": "petcd/petcd:latest",
    "etcd-3.5": "petcd/etcd:3.5.1",
    "etcd-3.4": "petcd/etcd:3.4.23",
}
# The proxy of the Toxiproxy overlay; TOXIPROXY_IMAGE in the environment replaces it (for example
# with ghcr.io/shopify/toxiproxy where a registry is reachable), as in the compose file.
TOXIPROXY_IMAGE = "petcd/toxiproxy:latest"
DNSMASQ_IMAGE = "petcd/dnsmasq:latest"
# images/build.sh step that builds each image (implementations, and "toxiproxy").
BUILD_STEPS: dict[str, str] = {"petcd": "petcd", "etcd-3.5": "etcd-3.5", "etcd-3.4": "etcd-3.4",
                               "toxiproxy": "toxiproxy", "dnsmasq": "dnsmasq"}
TOXIPROXY_SERVICES = ("toxiproxy", "toxiproxy-init")

COMPOSE_MEMBERS = ("node1", "node2", "node3", "node4", "node5")  # compose services, in order
CLASSIC = 3  # node1..node3; node4, node5 are the compose profile "five" (not with "dns")
FIRST_HOST = 100  # node1 is <prefix>.100, node2 .101, ...; joined members continue upwards
STOP_GRACE = 5
CLI_TIMEOUT = 120.0
SUBNET_TRIES = 20


__all__ = ["DockerCluster", "DockerError", "engine_available", "ensure_image", "image_exists"]


def toxiproxy_image() -> str:
    """The Toxiproxy image the overlay runs: $TOXIPROXY_IMAGE, else ours."""
    return os.environ.get("TOXIPROXY_IMAGE") or TOXIPROXY_IMAGE


def ensure_image(impl: str, timeout: float = 1800.0) -> str:
    """The image of `impl` (an implementation, "toxiproxy", "dnsmasq" or `image:NAME[:TAG]`),
    built with images/build.sh (cached, offline) if it is missing; a user's image must exist."""
    user_image = image_of(impl)
    if user_image is not None:
        if not image_exists(user_image):
            raise DockerError(f"image {user_image} not found: build or load it first "
                              f"(`docker images {user_image}` lists nothing)")
        return user_image
    image = (toxiproxy_image() if impl == "toxiproxy" else
             DNSMASQ_IMAGE if impl == "dnsmasq" else IMAGES[impl])
    if impl == "toxiproxy" and image != TOXIPROXY_IMAGE:
        return image  # someone else's image: compose pulls it
    if not image_exists(image):
        # images/build.sh is a shell script (mmdebstrap, apt-get download, docker build): a process.
        try:
            res = subprocess.run(["bash", str(BUILD_SCRIPT), BUILD_STEPS[impl]], check=False,
                                 capture_output=True, text=True, timeout=timeout,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise DockerError(f"{BUILD_SCRIPT} {BUILD_STEPS[impl]}: timed out after {timeout}s") \
                from e
        if res.returncode != 0 or not image_exists(image):
            tail = "\n".join((res.stdout + res.stderr).splitlines()[-30:])
            raise DockerError(f"building {image} with {BUILD_SCRIPT} failed:\n{tail}")
    return image


def _project_name(impl: str, bootstrap: str = "static") -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    kind = impl if bootstrap == "static" else f"{impl}-{bootstrap}"
    raw = f"petcd-{kind}-{worker}-{uuid.uuid4().hex[:8]}" if worker else \
        f"petcd-{kind}-{uuid.uuid4().hex[:8]}"
    return re.sub(r"[^a-z0-9_-]", "", raw.lower().replace(".", ""))


def _random_net_prefix() -> str:
    # 172.28.0.0/14 is outside the pools Docker hands out first (172.17-172.27 as /16s); a
    # collision with an existing network is detected by the engine and retried with another.
    return f"172.{random.randint(28, 31)}.{random.randint(0, 255)}"


class DockerCluster(Cluster):
    """A cluster of containers of one implementation.

    `size` is 1-5 initial members (the compose services node1..node5; 3 for the "dns"
    bootstrap, whose SRV records name node1..node3); grow further with `plan_member` + `join`
    (not when `proxied`; `replace_member` works on every topology). `project` and `net_prefix` default to fresh unique values. `proxied` adds
    the Toxiproxy overlay (with every bootstrap); `bootstrap` is "static", "discovery" or "dns", and
    `discovery_impl` the discovery service's implementation (see the module docstring).
    """

    def __init__(
        self,
        impl: Impl | str,
        size: int = 3,
        project: str | None = None,
        net_prefix: str | None = None,
        heartbeat_ms: int = 100,
        election_ms: int = 1000,
        image: str | None = None,
        proxied: bool = False,
        bootstrap: str = "static",
        discovery_impl: str = "etcd-3.5",
    ) -> None:
        self.impl = get_impl(impl) if isinstance(impl, str) else impl
        if not 1 <= size <= len(COMPOSE_MEMBERS):
            raise ValueError(f"the docker topology starts 1-{len(COMPOSE_MEMBERS)} members, "
                             f"not {size}; add more with plan_member() and join()")
        if bootstrap not in BOOTSTRAP_FILES:
            raise ValueError(f"bootstrap must be one of {', '.join(BOOTSTRAPS)}, not {bootstrap!r}")
        if bootstrap == "dns" and size != CLASSIC:
            raise ValueError(f"the dns bootstrap starts the {CLASSIC} members its SRV records "
                             f"name (compose/docker-compose.dns.yml), not {size}")
        if discovery_impl not in IMAGES:
            raise ValueError(f"discovery_impl must be one of {', '.join(IMAGES)}, "
                             f"not {discovery_impl!r}")
        self.bootstrap = bootstrap
        self.discovery_impl = discovery_impl
        self.image = (image if image is not None else image_of(self.impl.name)
                      or IMAGES[self.impl.name])
        self.project = project if project is not None else _project_name(self.impl.name,
                                                                          bootstrap)
        self._fixed_prefix = net_prefix
        self.net_prefix = net_prefix if net_prefix is not None else _random_net_prefix()
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.token = f"{self.project}-{uuid.uuid4().hex[:8]}"
        self._size = size
        self._ports: dict[str, int] = {}
        self._host_index: dict[str, int] = {}
        self._containers: dict[str, str] = {}  # member name -> container id
        self._joined: set[str] = set()  # members started with `docker run`, not compose
        self._down: set[str] = set()  # members the harness stopped or killed on purpose
        self._network = ""
        self.proxied = proxied
        self._api_port = ports.free_port() if proxied else 0
        self._discovery_port = ports.free_port() if bootstrap == "discovery" else 0
        self._proxy_ports: dict[str, int] = {}
        self._link_faults: LinkFaults | None = None
        self.links: ToxiproxyLinks | None = (
            ToxiproxyLinks("127.0.0.1", self._api_port) if proxied else None)
        self.members = []
        for i, name in enumerate(COMPOSE_MEMBERS[:size]):
            self._host_index[name] = FIRST_HOST + i
            self._ports[name] = ports.free_port()
            if proxied:
                self._proxy_ports[name] = ports.free_port()
            self.members.append(self._member(name))

    # ---- helpers -------------------------------------------------------------------------------

    def _member(self, name: str) -> Member:
        return Member(name, f"http://127.0.0.1:{self._ports[name]}",
                      f"http://{self._peer_host(name)}:2380")

    def _peer_host(self, name: str) -> str:
        # From DNS SRV, a member's peer URL is its SRV target, a name dnsmasq maps to its address
        # (and, through the overlay, each member's extra_hosts to its link proxy).
        if self.bootstrap == "dns" and name in COMPOSE_MEMBERS:
            return f"{name}.{DNS_DOMAIN}"
        # Through the overlay a compose member's identity is its name, resolved per container.
        if self.proxied and name in COMPOSE_MEMBERS:
            return f"{name}.peer"
        return self.address(name)

    def address(self, name: str) -> str:
        """The member's container address on the cluster network."""
        return f"{self.net_prefix}.{self._host_index[name]}"

    @property
    def discovery_url(self) -> str:
        """The v2 discovery URL the members boot from (bootstrap "discovery")."""
        return f"http://{self.net_prefix}.{DISCOVERY_HOST}:2379/v2/keys/discovery/{self.token}"

    @property
    def discovery_client_url(self) -> str:
        """The discovery service's client URL on the host (bootstrap "discovery")."""
        if not self._discovery_port:
            raise ClusterError(f"{self.project} has no discovery service (bootstrap "
                               f"{self.bootstrap!r})")
        return f"http://127.0.0.1:{self._discovery_port}"

    @property
    def dns_server(self) -> str:
        """The DNS server's address on the cluster network (bootstrap "dns")."""
        return f"{self.net_prefix}.{DNS_HOST}"

    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def _compose_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ETCD_", "ETCDCTL_", "NODE", "PETCD_", "COMPOSE_"))}
        env.update({
            "COMPOSE_PROJECT_NAME": self.project,
            "ETCD_IMAGE": self.image,
            "PETCD_NET_PREFIX": self.net_prefix,
            "PETCD_INITIAL_CLUSTER": self.initial_cluster(),
            "PETCD_CLUSTER_TOKEN": self.token,
            "PETCD_RESTART": "no",
            "PETCD_HEARTBEAT_MS": str(self.heartbeat_ms),
            "PETCD_ELECTION_MS": str(self.election_ms),
            "PETCD_MEMBERS": str(max(CLASSIC, self._size)),
        })
        if self._size > CLASSIC:
            env["COMPOSE_PROFILES"] = "five"
        for i, name in enumerate(COMPOSE_MEMBERS, start=1):
            # Members beyond `size` are never started, but the file needs their values.
            port = self._ports.get(name, 0)
            env[f"NODE{i}_CLIENT_PORT"] = str(port)
            env[f"NODE{i}_PEER_HOST"] = (self._peer_host(name) if self.proxied
                                         else f"{self.net_prefix}.{FIRST_HOST + i - 1}")
            env[f"NODE{i}_PROXY_CLIENT_PORT"] = str(self._proxy_ports.get(name, 0))
        env["TOXIPROXY_API_PORT"] = str(self._api_port)
        env["TOXIPROXY_IMAGE"] = toxiproxy_image()
        env.update({
            "DISCOVERY_IMAGE": IMAGES[self.discovery_impl],
            "PETCD_DISCOVERY_TOKEN": self.token,
            "PETCD_DISCOVERY_SIZE": str(self._size),
            "DISCOVERY_CLIENT_PORT": str(self._discovery_port),
            "PETCD_DNS_DOMAIN": DNS_DOMAIN,
            "DNSMASQ_IMAGE": DNSMASQ_IMAGE,
        })
        return env

    def compose_files(self) -> list[str]:
        """The compose files of this topology, base file first."""
        files = [str(BOOTSTRAP_FILES[self.bootstrap])]
        if self.proxied:
            files.append(str(TOXIPROXY_FILE))
            if self._size > CLASSIC:
                files.append(str(TOXIPROXY5_FILE))
        return files

    def compose_project(self, services: list[str] | None = None,
                        up_args: list[str] | None = None) -> ComposeProject:
        """This cluster's compose project (testcontainers' DockerCompose; ignores compose/.env)."""
        return ComposeProject.of([Path(f) for f in self.compose_files()], self.project,
                                 self._compose_env(), NO_ENV_FILE, services=services,
                                 up_args=up_args)

    def compose(self, *args: str, timeout: float = CLI_TIMEOUT,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a compose command on this cluster's project (ignores compose/.env)."""
        return self.compose_project().run(*args, timeout=timeout, check=check)

    def exec(self, member: Member, *cmd: str) -> dc.ExecResult:
        """Run `cmd` in the member's container (returncode, stdout, stderr)."""
        return dc.exec_in(self.container(member), *cmd)

    def inspect(self, member: Member) -> dict[str, object]:
        """The member's container inspect document (docker SDK)."""
        return dc.inspect(self.container(member)) or {}

    def disconnect(self, member: Member) -> None:
        """Detach the member's container from the cluster network (a total partition)."""
        dc.disconnect(self._network, self.container(member))

    def connect(self, member: Member) -> None:
        """Re-attach a disconnected member at its fixed address."""
        dc.connect(self._network, self.container(member), self.address(member.name))

    def container(self, member: Member) -> str:
        """The member's container id."""
        try:
            return self._containers[member.name]
        except KeyError:
            raise ClusterError(f"{member.name} has no container (cluster not started?)") from None

    def _state(self, member: Member) -> tuple[bool, int, str]:
        """(running, exit code, status) of the member's container."""
        cid = self._containers.get(member.name)
        return (False, 0, "absent") if cid is None else dc.state(cid)

    def logs(self, member: Member, lines: int = 30) -> str:
        cid = self._containers.get(member.name)
        return "(no container)" if cid is None else dc.logs(cid, lines)

    def _wait_running(self, member: Member, want: bool, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self._state(member)[0] != want:
            if time.monotonic() >= deadline:
                raise ClusterError(f"{member.name}: container still running={not want} "
                                   f"after {timeout}s")
            time.sleep(0.05)

    # ---- process control -----------------------------------------------------------------------

    def start(self) -> None:
        if self._containers:
            for m in self.members:
                if not self.is_running(m):
                    self.start_member(m)
            return
        if not image_exists(self.image):
            raise ClusterError(f"image {self.image} not found: run images/build.sh "
                               f"(or harness.docker_backend.ensure_image({self.impl.name!r}))")
        for aux in self._aux_images():
            if not image_exists(aux):
                raise ClusterError(f"image {aux} not found: run images/build.sh (or "
                                   "harness.docker_backend.ensure_image)")
        services = [m.name for m in self.members]
        # Proxied members depend on the proxy's one-shot set-up having finished, discovery and
        # DNS members on their bootstrap services: let compose start and wait for those.
        deps = ([*TOXIPROXY_SERVICES] if self.proxied else
                [] if self.bootstrap != "static" else ["--no-deps"])
        if self.proxied and toxiproxy_image() == TOXIPROXY_IMAGE \
                and not image_exists(TOXIPROXY_IMAGE):
            raise ClusterError(f"image {TOXIPROXY_IMAGE} not found: run images/build.sh "
                               "toxiproxy (or harness.docker_backend.ensure_image('toxiproxy'))")
        for attempt in range(SUBNET_TRIES):
            project = self.compose_project(services, ["--no-build", *deps])
            project.timeout = 300.0
            try:
                project.start()
                break
            except DockerError as e:
                err = str(e)
            overlap = "overlap" in err.lower() or "address already in use" in err
            project.down()
            if not overlap or self._fixed_prefix is not None or attempt == SUBNET_TRIES - 1:
                raise DockerError(f"compose up for {self.project} failed:\n{err}")
            # Another network holds this subnet: take a fresh one (peer URLs change with it).
            self.net_prefix = _random_net_prefix()
            self.members = [self._member(m.name) for m in self.members]
        for service in self._aux_services():
            self._record_service(service)
        for m in self.members:
            self._record_service(m.name)
        nets = dc.networks_of(self._containers[self.members[0].name])
        self._network = nets[0] if nets else ""

    def _aux_services(self) -> tuple[str, ...]:
        """Services besides the members that must keep running (proxy, discovery, DNS)."""
        return (*(("toxiproxy",) if self.proxied else ()), *BOOTSTRAP_SERVICES[self.bootstrap])

    def _aux_images(self) -> list[str]:
        return {"static": [], "discovery": [IMAGES[self.discovery_impl]],
                "dns": [DNSMASQ_IMAGE]}[self.bootstrap]

    def _record_service(self, service: str) -> None:
        cid = self.compose_project().container_id(service)
        if not cid:
            raise ClusterError(f"compose started no {service} container")
        self._containers[service] = cid

    def start_member(self, member: Member) -> None:
        dc.start(self.container(member))
        self._down.discard(member.name)

    def stop_member(self, member: Member) -> None:
        cid = self.container(member)
        self._down.add(member.name)
        dc.signal(cid, "CONT")  # a stopped process ignores TERM
        dc.stop(cid, STOP_GRACE)
        self._wait_running(member, False)

    def kill(self, member: Member) -> None:
        """SIGKILL the member: `docker compose kill` for the compose members, as a user would."""
        cid = self.container(member)
        self._down.add(member.name)
        if member.name in COMPOSE_MEMBERS and member.name not in self._joined:
            self.compose("kill", "-s", "SIGKILL", member.name, check=False)
        dc.signal(cid, "KILL")  # no-op unless compose failed
        self._wait_running(member, False)

    def pause(self, member: Member) -> None:
        if not self.is_running(member):
            raise ClusterError(f"{member.name} is not running")
        dc.signal(self.container(member), "STOP")

    def resume(self, member: Member) -> None:
        if not self.is_running(member):
            raise ClusterError(f"{member.name} is not running")
        dc.signal(self.container(member), "CONT")

    def is_running(self, member: Member) -> bool:
        return self._state(member)[0]

    def _check_alive(self) -> None:
        for service in self._aux_services():
            if service not in self._containers:
                continue
            aux = Member(service, "", "")
            running, code, status = self._state(aux)
            if not running:
                raise ClusterError(f"the {service} container ({status}) exited with rc={code}; "
                                   f"docker logs:\n{self.logs(aux)}")
        for m in self.members:
            if m.name in self._down or m.name not in self._containers:
                continue
            running, code, status = self._state(m)
            if not running:
                raise ClusterError(
                    f"{self.impl.name} member {m.name} ({status}) exited with rc={code}; "
                    f"docker logs:\n{self.logs(m)}")

    def stop(self) -> None:
        """Remove every container, network and volume of the project (idempotent)."""
        for name in sorted(self._joined):
            dc.remove_containers([f"{self.project}-{name}"])
            dc.remove_volume(f"{self.project}_{name}-data")
        down = self.compose_project().down()
        # Whatever compose left behind (e.g. after a failed `up`), found by its project label.
        dc.sweep(self.project)
        for p in [*self._ports.values(), *self._proxy_ports.values(), self._api_port,
                  self._discovery_port]:
            if p:
                ports.release(p)
        self._containers.clear()
        self._joined.clear()
        left = self.leftovers()
        if left:
            raise DockerError(f"teardown of {self.project} left {left}:\n{down.stderr.strip()}")

    def leftovers(self) -> list[str]:
        """Containers, networks and volumes of this project that still exist."""
        return dc.leftovers(self.project)

    # ---- membership ----------------------------------------------------------------------------

    def plan_member(self, name: str) -> Member:
        if name in self._host_index:
            raise ValueError(f"member name {name!r} already used")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            raise ValueError(f"member name {name!r}: use lowercase letters, digits, '-' and '_'")
        self._host_index[name] = max(self._host_index.values(), default=FIRST_HOST - 1) + 1
        if self._host_index[name] > 254:
            raise ValueError("no addresses left on the cluster network")
        self._ports[name] = ports.free_port()
        return self._member(name)

    def join(self, member: Member, initial_cluster: str) -> None:
        if not self._network:
            raise ClusterError("cluster not started")
        if self.proxied:
            raise ClusterError("a proxied cluster cannot grow: its links are the fixed proxies "
                               "of compose/docker-compose.toxiproxy.yml")
        name = member.name
        hosts = {f"{other}.peer": f"{self.net_prefix}.{FIRST_HOST + i}"
                 for i, other in enumerate(COMPOSE_MEMBERS)}
        # With the dns bootstrap the members' peer URLs are names only dnsmasq knows.
        dns = [self.dns_server] if self.bootstrap == "dns" else []
        env = {
            "ETCD_NAME": name,
            "ETCD_LISTEN_PEER_URLS": "http://0.0.0.0:2380",
            "ETCD_LISTEN_CLIENT_URLS": "http://0.0.0.0:2379",
            "ETCD_INITIAL_ADVERTISE_PEER_URLS": member.peer_url,
            "ETCD_ADVERTISE_CLIENT_URLS": f"http://{self.address(name)}:2379",
            "ETCD_INITIAL_CLUSTER": initial_cluster,
            "ETCD_INITIAL_CLUSTER_STATE": "existing",
            "ETCD_INITIAL_CLUSTER_TOKEN": self.token,
            "ETCD_DATA_DIR": "/var/lib/etcd/data",
            "ETCD_HEARTBEAT_INTERVAL": str(self.heartbeat_ms),
            "ETCD_ELECTION_TIMEOUT": str(self.election_ms),
        }
        self._joined.add(name)
        cid = dc.run_member(self.image, f"{self.project}-{name}", name, self._network,
                            self.address(name), self._ports[name], f"{self.project}_{name}-data",
                            env, hosts, dns, {"org.petcd.project": self.project})
        self._containers[name] = cid
        self.members.append(member)

    def forget(self, member: Member) -> None:
        if member.name in self._containers and self.is_running(member):
            self.stop_member(member)
        self.members = [m for m in self.members if m.name != member.name]

    def replace_member(self, member: Member) -> dict[str, object]:
        """Replace `member` in place by a fresh container and volume (`harness.docker_replace`)."""
        from harness.docker_replace import replace_member

        return replace_member(self, member)

    # ---- links (proxied clusters) --------------------------------------------------------------

    def _links(self) -> ToxiproxyLinks:
        if self.links is None:
            raise ClusterError(f"{self.project} is not proxied: use DockerCluster(..., proxied=True)")
        return self.links

    def link(self, src: Member | str, dst: Member | str) -> Link:
        """The directed peer link src -> dst (connections src opens to dst's peer port)."""
        s = src if isinstance(src, str) else src.name
        d = dst if isinstance(dst, str) else dst.name
        if s == d:
            raise ValueError(f"no link from {s} to itself")
        return Link(self._links(), link_name(s, d))

    def peer_links(self, member: Member) -> list[Link]:
        """Every directed peer link from or to `member`."""
        others = [m for m in self.members if m.name != member.name]
        return [*(self.link(member, o) for o in others), *(self.link(o, member) for o in others)]

    def client_link(self, member: Member) -> Link:
        """The proxy in front of the member's client port (see `proxied_client_url`)."""
        return Link(self._links(), client_link_name(member.name))

    def proxied_client_url(self, member: Member) -> str:
        """The member's client URL through its `client_to_<name>` proxy."""
        self._links()
        return f"http://127.0.0.1:{self._proxy_ports[member.name]}"

    def isolate(self, member: Member) -> None:
        """Cut every peer link from and to `member` (its client port stays reachable)."""
        for link in self.peer_links(member):
            link.cut()

    def heal(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        self._links().reset()

    def link_faults(self) -> LinkFaults:
        """The cluster's one `harness.link_faults.LinkFaults` (recorded Toxiproxy faults)."""
        self._links()
        if self._link_faults is None:
            from harness.link_faults import LinkFaults

            self._link_faults = LinkFaults(self)
        return self._link_faults
