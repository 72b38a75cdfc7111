"""Conformance suite: the same behaviour checks against petcd and real etcd 3.5 / 3.4."""
