"""Sequential specifications ("models") for the linearizability checker, Porcupine style.

A :class:`Model` is a pure state machine:

* ``init()`` -- the initial state;
* ``step(state, input, output) -> (ok, new_state)`` -- whether a single, atomic execution of
  ``input`` in ``state`` could have produced ``output``, and the state after it. It must be a
  pure function of its arguments (the checker memoises it);
* ``partition(history)`` -- split a history into independent sub-histories such that the whole
  is linearizable iff every part is (P-compositionality, e.g. by key). ``init``/``step`` then
  describe one part only;
* ``describe_operation`` / ``describe_state`` -- short human-readable text for reports.

States must be hashable and immutable: the checker keys its cache on ``(linearized set,
state)`` and interns states.

An operation with an unknown outcome (output type ``info``) must be accepted by ``step`` in any
state: it may or may not have taken effect, and the checker, which keeps it open to the end of
the history, decides where (or, by placing it last, whether) it took effect.

Models here:

* :class:`RegisterModel` (``register``): per-key registers with read / write / cas; a cas
  argument is ``[from, to]``. Failed operations were dropped during pairing.
* :class:`EtcdModel` (``etcd``): the Jepsen etcd register of Porcupine's test data. As the
  register, but a *failed* cas is kept and checked: etcd fails a cas exactly when the compare
  does not match, so it is legal only in a state whose value differs from ``from``.
* :class:`KvModel` (``kv``): Porcupine's key-value model: get / put / append on string values,
  a missing key reads as ``""``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol

from jepsen_style.history import Input, Operation, Output, Value

State = Hashable


class Model(Protocol):
    """The checker's view of a sequential specification (see the module docstring)."""

    name: str
    keep_failed: frozenset[str]
    """Functions whose ``fail`` completions are definite responses to check, not dropped."""

    def init(self) -> State: ...

    def step(self, state: State, input: Input, output: Output) -> tuple[bool, State]: ...

    def read_only(self, input: Input, output: Output) -> bool:
        """True if this operation, with this output, leaves every state in which it is legal
        unchanged (a read). The checker linearizes such operations eagerly; answering False is
        always safe, only slower."""
        ...

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]: ...

    def describe_operation(self, input: Input, output: Output) -> str: ...

    def describe_state(self, state: State) -> str: ...


def partition_by_key(history: Sequence[Operation]) -> list[list[Operation]]:
    """Split by ``input.key``, parts in sorted key order (None first), order kept within."""
    parts: dict[str | None, list[Operation]] = {}
    for op in history:
        parts.setdefault(op.input.key, []).append(op)
    return [parts[k] for k in sorted(parts, key=lambda k: (k is not None, k or ""))]


def _fmt(v: Value) -> str:
    if v is None:
        return "nil"
    if isinstance(v, tuple):
        return "[" + " ".join(_fmt(x) for x in v) + "]"
    return repr(v) if isinstance(v, str) else str(v)


def _key_prefix(inp: Input) -> str:
    return "" if inp.key is None else f"{inp.key!r}, "


class UnknownOperationError(ValueError):
    """A history holds an operation the model does not define."""


class RegisterModel:
    """Per-key registers, initially nil: ``read``, ``write v``, ``cas [from to]``.

    * read ok with value v: legal iff state == v; state unchanged.
    * write v: always legal; state becomes v.
    * cas [from to] ok: legal iff state == from; state becomes to.
    * any unknown outcome: legal; a cas then changes the state iff state == from.
    * cas fail (only seen if kept, see :class:`EtcdModel`): legal iff state != from.
    """

    name = "register"
    keep_failed: frozenset[str] = frozenset()

    def init(self) -> State:
        return None

    def step(self, state: State, input: Input, output: Output) -> tuple[bool, State]:
        f = input.f
        if f == "read":
            return (output.type == "info" or output.value == state), state
        if f == "write":
            return True, input.value
        if f == "cas":
            arg = input.value
            if not isinstance(arg, tuple) or len(arg) != 2:
                raise UnknownOperationError(f"cas argument must be [from to], got {arg!r}")
            matches = state == arg[0]
            if output.type == "ok":
                return matches, (arg[1] if matches else state)
            if output.type == "fail":
                return not matches, state
            return True, (arg[1] if matches else state)
        raise UnknownOperationError(f"register model has no operation {f!r}")

    def read_only(self, input: Input, output: Output) -> bool:
        return input.f == "read" or (input.f == "cas" and output.type == "fail")

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        return partition_by_key(history)

    def describe_operation(self, input: Input, output: Output) -> str:
        k = _key_prefix(input)
        result = "unknown" if output.type == "info" else output.type
        if input.f == "read":
            shown = "unknown" if output.type == "info" else _fmt(output.value)
            return f"read({k.rstrip(', ')}) -> {shown}"
        if input.f == "write":
            return f"write({k}{_fmt(input.value)}) -> {result}"
        if input.f == "cas" and isinstance(input.value, tuple) and len(input.value) == 2:
            a, b = input.value
            return f"cas({k}{_fmt(a)}, {_fmt(b)}) -> {result}"
        return f"{input.f}({k}{_fmt(input.value)}) -> {result} {_fmt(output.value)}"

    def describe_state(self, state: State) -> str:
        return _fmt(state)  # type: ignore[arg-type]


class EtcdModel(RegisterModel):
    """The etcd register of Porcupine's Jepsen test data: failed cas is a definite
    "compare did not match" response and is checked (see :class:`RegisterModel`)."""

    name = "etcd"
    keep_failed = frozenset({"cas"})


class KvModel:
    """Porcupine's kv model, one string per key, initially ``""``.

    * get ok with value v: legal iff state == v (nil reads as ``""``);
    * put v: state becomes v; append v: state becomes state + v;
    * unknown outcomes: always legal (a put/append then takes effect where placed).
    """

    name = "kv"
    keep_failed: frozenset[str] = frozenset()

    def init(self) -> State:
        return ""

    def step(self, state: State, input: Input, output: Output) -> tuple[bool, State]:
        f = input.f
        assert isinstance(state, str)
        if f == "get":
            if output.type == "info":
                return True, state
            got = "" if output.value is None else output.value
            return got == state, state
        if f in ("put", "append"):
            v = input.value
            if not isinstance(v, str):
                raise UnknownOperationError(f"{f} value must be a string, got {v!r}")
            return True, (v if f == "put" else state + v)
        raise UnknownOperationError(f"kv model has no operation {f!r}")

    def read_only(self, input: Input, output: Output) -> bool:
        return input.f == "get"

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        return partition_by_key(history)

    def describe_operation(self, input: Input, output: Output) -> str:
        if input.f == "get":
            shown = "unknown" if output.type == "info" else repr(output.value or "")
            return f"get({input.key!r}) -> {shown}"
        return f"{input.f}({input.key!r}, {_fmt(input.value)})"

    def describe_state(self, state: State) -> str:
        return repr(state)


MODELS: dict[str, Model] = {
    "register": RegisterModel(),
    "etcd": EtcdModel(),
    "kv": KvModel(),
}


def get_model(name: str) -> Model:
    """Look up a model by name; raise ValueError listing the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(sorted(MODELS))})") from None
