"""Every fixed choice of the gate, in one place: what runs, with which seed, and the margins.

Changing anything here changes what the baseline means: refresh it (`make baseline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA = 1
SEED = 7

# -- conformance ---------------------------------------------------------------------------
CONFORMANCE_FILES = (
    "conformance/test_kv.py",
    "conformance/test_txn.py",
    "conformance/test_watch.py",
    "conformance/test_revision.py",
)
"""A bounded subset (about 100 tests over three targets, 1-2 min on the 2-core box)."""
REFERENCE_TARGETS = ("etcd-3.5", "etcd-3.4")
CONFORMANCE_TIMEOUT_S = 420.0


# -- correctness ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CorrectnessCell:
    """One `jepsen_style run`; `expect` is what a healthy implementation gives (controls
    expect VIOLATION: they prove the checker still catches what it must)."""

    backend: str
    workload: str
    nemesis: str
    seconds: float
    expect: str = "VALID"
    args: tuple[str, ...] = ()
    needs_links: bool = False
    """Needs link faults (partition/latency), which the Docker backend may not have yet."""
    why: str = ""

    @property
    def id(self) -> str:
        extra = "".join(a.removeprefix("--").replace("-reads", "") + "+" for a in self.args
                        if a.startswith("--") and a.endswith("-reads"))
        return f"{self.backend}/{self.workload}/{extra}{self.nemesis}"

    @property
    def control(self) -> bool:
        return self.expect == "VIOLATION"


_SHORT = ("--quiet-start", "3", "--fault-seconds", "5", "--quiet-seconds", "3",
          "--final-quiet", "3")
_FEW = ("--concurrency", "10")
"""Register runs with kills: 30 slots leave hundreds of unknown (info) writes open, and the
linearizability search then hits its state limit (UNKNOWN); 10 slots check in well under 1 s."""
CORRECTNESS: tuple[CorrectnessCell, ...] = (
    CorrectnessCell("local", "register", "partition,kill", 20, args=(*_SHORT, *_FEW)),
    CorrectnessCell("local", "register", "partition", 14,
                    args=(*_SHORT, "--isolated-reads"),
                    why="an isolated member must not answer linearizable reads: catches a "
                        "read path that skips ReadIndex"),
    CorrectnessCell("local", "append", "kill", 16, args=_SHORT),
    CorrectnessCell("local", "watch", "latency", 14, args=_SHORT),
    CorrectnessCell("local", "register", "partition", 14, expect="VIOLATION",
                    args=(*_SHORT, "--serializable-reads", "--isolated-reads"),
                    why="negative control: serializable reads on an isolated member are stale"),
    CorrectnessCell("docker", "register", "kill", 12, args=(*_SHORT, *_FEW)),
    CorrectnessCell("docker", "append", "kill", 12, args=_SHORT),
    CorrectnessCell("docker", "register", "partition,kill", 14, args=(*_SHORT, *_FEW),
                    needs_links=True),
    CorrectnessCell("docker", "watch", "latency", 12, args=_SHORT, needs_links=True),
)
CELL_TIMEOUT_PAD_S = 150.0
"""A run's outer bound: its load time plus this (cluster start, heal, check)."""


# -- speed ---------------------------------------------------------------------------------
SPEED_OPS = ("put", "get-linearizable", "get-serializable")
SPEED_INFLIGHT = (16, 64)
SPEED_ROUNDS = 3
SPEED_SECONDS = 2.0
REFERENCE_IMPL = "etcd-3.5"


@dataclass(frozen=True)
class Margin:
    """Noise margin of a ratio: m = clamp(spread_baseline + spread_now, floor, cap), where a
    spread is (max - min) / median of the per-round ratios of one run. A higher-is-better
    ratio fails below baseline x (1 - m); a lower-is-better one above baseline x (1 + m)."""

    floor: float
    cap: float

    def of(self, spread_base: float, spread_now: float) -> float:
        return min(self.cap, max(self.floor, spread_base + spread_now))


THROUGHPUT_MARGIN = Margin(floor=0.15, cap=0.45)
CPU_MARGIN = Margin(floor=0.15, cap=0.45)
RSS_MARGIN = Margin(floor=0.25, cap=0.25)
"""Peak RSS is one figure per run (no rounds), so its margin is the floor alone."""


@dataclass
class Plan:
    """What one gate run does (all parts by default; tests and quick checks narrow it)."""

    target: str = "petcd"
    conformance: bool = True
    correctness: bool = True
    speed: bool = True
    cells: tuple[CorrectnessCell, ...] = CORRECTNESS
    extra_pytest: list[str] = field(default_factory=list)
