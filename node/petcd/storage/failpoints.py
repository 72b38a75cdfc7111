"""Named failpoints at persistence points, armed from the environment.

`PETCD_FAILPOINTS` is a comma-separated list of `name=action`; actions:

- `panic`: print `failpoint: <name>` to stderr and leave the process with exit code 2 at once
  (no cleanup, no flush of Python buffers, like a crash);
- `error`: raise `FailpointError(name)` (for in-process tests);
- `delay:<ms>`: for the delay points below, pause that request by `ms` milliseconds;
- `on`: switch a behaviour point below on.

Behaviour points (used by the regression gate's deliberate-regression checks, `harness.gate`):

| name | action | effect |
|---|---|---|
| `putDelay` | `delay:<ms>` | every Put waits `ms` before it is proposed (a slow put path) |
| `linearizableReadLocal` | `on` | linearizable reads skip ReadIndex and read local state (unsafe) |

The table is read at import; `reload()` re-reads it (tests). An unarmed `failpoint()` costs one
truth test, so calls may sit on hot paths.
"""

from __future__ import annotations

import os
import sys

ENV = "PETCD_FAILPOINTS"
_ACTIONS = ("panic", "error", "on")
PUT_DELAY = "putDelay"
LINEARIZABLE_READ_LOCAL = "linearizableReadLocal"


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
        if not sep or not name or not (action in _ACTIONS or _delay_ms(action) is not None):
            raise ValueError(f"{ENV}: bad failpoint {term!r} (want name=panic|error|on|delay:MS)")
        out[name] = action
    return out


def _delay_ms(action: str) -> float | None:
    """The milliseconds of a `delay:<ms>` action (0..60000), else None."""
    kind, _, ms = action.partition(":")
    try:
        value = float(ms)
    except ValueError:
        return None
    return value if kind == "delay" and 0 <= value <= 60_000 else None


def reload(spec: str | None = None) -> None:
    """Arm exactly the failpoints in `spec` (default: the environment's)."""
    global _armed
    _armed = parse(os.environ.get(ENV, "") if spec is None else spec)


def armed() -> dict[str, str]:
    return dict(_armed)


def is_on(name: str) -> bool:
    """True when behaviour point `name` is armed with `on`."""
    return bool(_armed) and _armed.get(name) == "on"


def delay_seconds(name: str) -> float:
    """Seconds delay point `name` should wait (0.0 when not armed with `delay:<ms>`)."""
    if not _armed:
        return 0.0
    ms = _delay_ms(_armed.get(name, ""))
    return 0.0 if ms is None else ms / 1000.0


def failpoint(name: str) -> None:
    """Trigger `name` if armed; otherwise do nothing."""
    if not _armed:
        return
    action = _armed.get(name)
    if action is None or action == "on" or action.startswith("delay:"):
        return
    if action == "panic":
        sys.stderr.write(f"failpoint: {name}\n")
        sys.stderr.flush()
        os._exit(2)
    raise FailpointError(name)


reload()
