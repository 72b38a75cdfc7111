"""Fixtures come from `harness.pytest_plugin` (targets, clusters, etcdctl, aetcd)."""

from harness.pytest_plugin import *
