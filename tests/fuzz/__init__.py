"""Differential fuzzer: request sequences run against petcd and etcd 3.5.1 side by side.

Modules: `model` (the operations as JSON-able dicts, and the Hypothesis strategies that make
them), `normalize` (answers with ids masked and revisions made relative), `execute` (one
operation against one server), `pair` (two single-member clusters, a sequence on both, the
comparison and the reset), `__main__` (the long run, `make fuzz`).
"""
