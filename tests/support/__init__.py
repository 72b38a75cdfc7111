"""Helpers shared by every test root (node/tests, conformance, harness/tests, toxiproxy/tests,
jepsen_style/tests, tests/): one copy of each, imported as `tests.support.<module>`.

- `wait`: poll a condition with a bounded deadline (sync and async); the only way tests wait.
- `timeouts`: the named deadlines tests wait with.
- `encoding`: base64 of strings, as etcd's JSON gateway carries keys and values.
- `leases`: granting leases through etcdctl and reading its lease output.
- `clusters`: healthy local clusters for fixtures, and the leader a set of members agrees on.
- `docker`: healthy Docker clusters for fixtures (leftovers checked); `needs_engine`.
- `http`: one plain HTTP/1.1 request to a member's client URL.
- `procs`: client processes read line by line with deadlines (`Proc`), lockctl.
- `forwarder`: an in-process TCP forwarder a test can cut and restore.

The package is importable wherever pytest runs from the repository root (the root conftest.py
puts the root on sys.path) and for mypy (run from the root). Helpers raise AssertionError with
a message saying what was awaited, so a failure reads the same from every suite.
"""
