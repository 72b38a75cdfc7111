"""The named deadlines (seconds) tests wait with: one place, so a slow machine is tuned once.

Each is an upper bound for a wait that polls (`tests.support.wait`), never a sleep: a passing
test returns as soon as its condition holds, so raising one only makes failures slower.
"""

from __future__ import annotations

CLUSTER_UP = 60.0
"""A local cluster (processes on loopback) started or restarted until healthy, leader agreed."""

DOCKER_UP = 90.0
"""A Docker cluster (containers, a network, maybe a proxy) started until healthy."""

CONVERGE = 30.0
"""A cluster-wide condition after a change: election, replication to a member, a member added
or removed, a lease revoked after its TTL, a snapshot sent and applied."""

SETTLE = 20.0
"""A client-visible condition on a healthy cluster: a lock or key appears, a watcher sees it."""

LOOPBACK = 15.0
"""An in-process condition over loopback sockets: a peer link dials, a message arrives."""

REQUEST = 15.0
"""One client request (an HTTP or gRPC call) before the client gives up."""

STEP = 10.0
"""One step of a scripted exchange (a watch event, a proxy's reaction) on a healthy setup."""
