"""Every version string petcd reports, in one place.

petcd speaks etcd 3.5's API: it reports etcd 3.5.1 as its server version (``/version``, the
Status RPC, the peer handshake, the ``etcd_server_version`` metric) and 3.5.0 as the cluster
version (etcd reports major.minor.0); ``--version`` prints petcd's own package version beside
the API version.
"""

from __future__ import annotations

from importlib import metadata

__all__ = [
    "API_VERSION",
    "CLUSTER_MINOR_VERSION",
    "CLUSTER_VERSION",
    "PETCD_VERSION",
    "SERVER_VERSION",
]


def _petcd_version() -> str:
    try:
        return metadata.version("petcd")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


PETCD_VERSION = _petcd_version()
#: petcd's own release (the installed package's version).
API_VERSION = "3.5"
#: etcd API version petcd speaks (what ``--version`` reports).
SERVER_VERSION = "3.5.1"
#: Server version petcd reports to etcd clients and peers (``/version``, Status RPC).
CLUSTER_VERSION = "3.5.0"
#: Cluster version petcd reports (etcd reports major.minor.0).
CLUSTER_MINOR_VERSION = "3.5"
#: The ``cluster_version`` label of ``etcd_cluster_version`` (etcd labels it major.minor).
