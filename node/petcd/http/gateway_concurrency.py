"""Gateway routes of the v3lockpb.Lock and v3electionpb.Election services
(`/v3/lock/*`, `/v3/election/*`; `/v3/election/observe` streams the leader and its changes)."""

from __future__ import annotations

from petcd.api.v3electionpb import v3election_pb2 as epb
from petcd.api.v3lockpb import v3lock_pb2 as lpb
from petcd.http.gateway import route

_LOCK = lpb.DESCRIPTOR.services_by_name["Lock"]
_ELECTION = epb.DESCRIPTOR.services_by_name["Election"]

route("/v3/lock/lock", _LOCK, "Lock")
route("/v3/lock/unlock", _LOCK, "Unlock")
for _name in ("Campaign", "Proclaim", "Leader", "Observe", "Resign"):
    route(f"/v3/election/{_name.lower()}", _ELECTION, _name)
