"""Jepsen-style verification for petcd: histories, models and the linearizability checker.

Layout: :mod:`history` (events, operations, JSON lines), :mod:`jepsen_log` (Jepsen's own log
and EDN formats), :mod:`models` (sequential specifications), :mod:`checker` (the search),
:mod:`report` (HTML timelines), ``python -m jepsen_style`` (the CLI).
"""
