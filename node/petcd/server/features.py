"""The optional subsystems a member runs, each installed while the EtcdServer is built.

An installer attaches a subsystem (watch hub, lessor, auth store, alarms, ...) to the server
through its extension points (`register_apply`, `kv_listeners`, `leader_listeners`,
`restore_listeners`, `add_task`), configured from `server.options`, and sets its declared
field of the server for the gRPC adapters. Add one line here per subsystem.
"""

from __future__ import annotations

from petcd import metrics
from petcd.server import alarms, auth_ops, compactor, lease_ops
from petcd.server.etcdserver import Installer
from petcd.server.watch_hub import install as install_watch_hub
from petcd.v2 import server as v2_server

INSTALLERS: list[Installer] = [
    lease_ops.install,
    install_watch_hub,
    alarms.install,
    metrics.install,
    v2_server.install,
    compactor.install,
    auth_ops.install,
]
