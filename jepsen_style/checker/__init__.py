"""Checkers over paired histories (see :mod:`jepsen_style.checker.linearizability`)."""

from jepsen_style.checker.linearizability import (
    Candidate,
    CheckResult,
    Counterexample,
    PartitionResult,
    check,
    search,
)

__all__ = ["Candidate", "CheckResult", "Counterexample", "PartitionResult", "check", "search"]
