"""Named failpoints at persistence points, armed from the environment.

`PETCD_FAILPOINTS` is a comma-separated list of `name=action`; actions:

- `panic`: print `failpoint: <name>` to stderr and leave the process with exit code 2 at once
  (no cleanup, no flush of Python buffers, like a crash);
- `error`: raise `FailpointError(name)` (for in-process tests).

The table is read at import; `reload()` re-reads it (tests). An unarmed `failpoint()` costs one
truth test, so calls may sit on hot paths.
"""

from __future__ import annotations

import os
import sys

ENV = "PETCD_FAILPOINTS"
_ACTIONS = ("panic", "error")


class FailpointError(RuntimeError):
    """Raised by a failpoint armed with the `error` action."""


_armed: dict[str, str] = {}


def parse(spec: str) -> dict[str, str]:
    """Parse `a=panic,b=error`. Raises ValueError on an unknown action or a malformed term."""
    out: dict[str, str] = {}
    for term in spec.split(","):
        term = term.strip()
        if not term:
            continue
        name, sep, action = term.partition("=")
        name, action = name.strip(), action.strip()
        if not sep or not name or action not in _ACTIONS:
            raise ValueError(f"{ENV}: bad failpoint {term!r} (want name=panic|error)")
        out[name] = action
    return out


def reload(spec: str | None = None) -> None:
    """Arm exactly the failpoints in `spec` (default: the environment's)."""
    global _armed
    _armed = parse(os.environ.get(ENV, "") if spec is None else spec)


def armed() -> dict[str, str]:
    return dict(_armed)


def failpoint(name: str) -> None:
    """Trigger `name` if armed; otherwise do nothing."""
    if not _armed:
        return
    action = _armed.get(name)
    if action is None:
        return
    if action == "panic":
        sys.stderr.write(f"failpoint: {name}\n")
        sys.stderr.flush()
        os._exit(2)
    raise FailpointError(name)


reload()
