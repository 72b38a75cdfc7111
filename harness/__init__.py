"""Testbed for petcd: start/stop clusters of petcd or real etcd, fault handles, bench.

`harness.cluster` defines the backend-neutral `Cluster` interface; `harness.local` runs members
as local processes on loopback. Nothing here knows petcd internals: every target is driven only
through its command line and its client API.
"""
