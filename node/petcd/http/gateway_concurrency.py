"""Gateway routes of the v3lockpb.Lock and v3electionpb.Election services
(`/v3/lock/*`, `/v3/election/*`; `/v3/election/observe` streams the leader and its changes)."""

from __future__ import annotations

from google.protobuf.descriptor import ServiceDescriptor

from petcd.api.v3electionpb import v3election_pb2 as epb
from petcd.api.v3lockpb import v3lock_pb2 as lpb

_LOCK = lpb.DESCRIPTOR.services_by_name["Lock"]
_ELECTION = epb.DESCRIPTOR.services_by_name["Election"]

BINDINGS: tuple[tuple[str, ServiceDescriptor, str], ...] = (
    ("/v3/lock/lock", _LOCK, "Lock"),
    ("/v3/lock/unlock", _LOCK, "Unlock"),
    *(
        (f"/v3/election/{name.lower()}", _ELECTION, name)
        for name in ("Campaign", "Proclaim", "Leader", "Observe", "Resign")
    ),
)
"""(path, service, method) of every route (built into the table by `gateway.route_table`)."""
