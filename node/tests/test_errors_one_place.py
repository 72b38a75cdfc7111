"""The "one place for error strings" rule, enforced: petcd.errors holds every user-visible text.

An AST scan of node/petcd finds each ``raise SomeError(<string literal>)``, gRPC
``abort(code, <string literal>)`` and ``sys.stderr.write(<string literal>)`` outside
petcd/errors.py. Each hit must either move to petcd.errors or be listed in ``INTERNAL`` below
(an internal assertion or a reason that is only logged, never shown to a user), so a new
user-visible literal fails this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "petcd"

# (module path relative to petcd/, the literal as ast.unparse renders it, quotes included).
# Internal only: invariant checks, programming errors and reasons that are logged but never
# sent or shown. A user-visible text belongs in petcd/errors.py instead.
INTERNAL: frozenset[tuple[str, str]] = frozenset({
    # Raft, MVCC and raft-log invariants: programming errors or storage-corruption checks, never a client's answer.
    ('mvcc/key_index.py', "'restore on a non-empty key index'"),
    ('mvcc/key_index.py', "f'put with a non-increasing revision {rev} <= {self.modified}'"),
    ('mvcc/kv.py', "'mvcc: corrupt stored key-value'"),
    ('mvcc/kvstore.py', "'mvcc: a write txn is already open'"),
    ('mvcc/kvstore.py', "'mvcc: compact with an open write txn'"),
    ('mvcc/kvstore.py', "'mvcc: reload with an open write txn'"),
    ('mvcc/kvstore.py', "'mvcc: write txn already ended'"),
    ('mvcc/kvstore.py', "f'mvcc: index points at missing revision {tuple(r)}'"),
    ('mvcc/revision.py', "f'bad revision bytes length {len(b)}'"),
    ('raft/codec.py', "'raft codec: bad entries'"),
    ('raft/codec.py', "'raft codec: bad entry type'"),
    ('raft/codec.py', "'raft codec: bad message type'"),
    ('raft/codec.py', "'raft codec: bad reject'"),
    ('raft/codec.py', "'raft codec: bad snapshot'"),
    ('raft/codec.py', "'raft codec: not a message'"),
    ('raft/codec.py', "'raft codec: unsupported version'"),
    ('raft/codec.py', "f'raft codec: bad {what}'"),
    ('raft/codec.py', "f'raft codec: undecodable message: {exc}'"),
    ('raft/confchange.py', "'removed all voters'"),
    ('raft/confchange.py', "f'unknown conf change type {t}'"),
    ('raft/confchange.py', "f'voters and learners overlap in {cs}'"),
    ('raft/config.py', "'cannot use none as id'"),
    ('raft/config.py', "'election tick must be greater than heartbeat tick'"),
    ('raft/config.py', "'heartbeat tick must be greater than 0'"),
    ('raft/config.py', "'max inflight messages must be greater than 0'"),
    ('raft/config.py', "'max size per msg must be greater than 0'"),
    ('raft/inflights.py', "'cannot add into a full inflights'"),
    ('raft/inflights.py', "'inflights size must be positive'"),
    ('raft/inflights.py', "f'inflight index {index} below last added {self._q[-1]}'"),
    ('raft/leader.py', "'leader was removed from the configuration'"),
    ('raft/leader.py', "'leadership transfer in progress'"),
    ('raft/leader.py', "'stepped empty MsgProp'"),
    ('raft/log.py', "f'after({after}) is out of range [committed({self.committed})]'"),
    ('raft/log.py', "f'applied({i}) is out of range [prevApplied({self.applied}), committed({self.committed})]'"),
    ('raft/log.py', "f'entry {ci} conflicts with committed entry {self.committed}'"),
    ('raft/log.py', "f'index {i} compacted'"),
    ('raft/log.py', "f'index {i} unavailable'"),
    ('raft/log.py', "f'index {lo} compacted'"),
    ('raft/log.py', "f'invalid slice {lo} > {hi}'"),
    ('raft/log.py', "f'slice[{lo},{hi}) out of bound [{fi},{self.last_index()}]'"),
    ('raft/log.py', "f'tocommit({tocommit}) is out of range [lastIndex({self.last_index()})]'"),
    ('raft/raft.py', "'invalid transition [follower -> leader]'"),
    ('raft/raft.py', "'invalid transition [leader -> candidate]'"),
    ('raft/raft.py', "'invalid transition [leader -> pre-candidate]'"),
    ('raft/raft.py', "'need non-empty snapshot'"),
    ('raft/raft.py', "'no leader'"),
    ('raft/raft.py', "f'term should be set when sending {t.name}'"),
    ('raft/raft.py', "f'term should not be set when sending {t.name}'"),
    ('raft/raft.py', "f'{self.id} sending {t.name} to itself'"),
    ('raft/raft.py', "f'{self.id} state.commit {hs.commit} is out of range [{self.raft_log.committed}, {self.raft_log.last_index()}]'"),
    ('raft/storage.py', "'no entries'"),
    ('raft/storage.py', "'snapshot out of date'"),
    ('raft/storage.py', "f'compact {compact_index} beyond last {self.last_index()}'"),
    ('raft/storage.py', "f'entries hi {hi} beyond last index {self.last_index()}'"),
    ('raft/storage.py', "f'index {compact_index} already compacted'"),
    ('raft/storage.py', "f'index {i} compacted'"),
    ('raft/storage.py', "f'index {i} unavailable'"),
    ('raft/storage.py', "f'index {lo} compacted (first is {offset + 1})'"),
    ('raft/storage.py', "f'missing log entry [last: {self.last_index()}, append at: {entries[0].index}]'"),
    ('raft/storage.py', "f'snapshot index {i} beyond last index {self.last_index()}'"),
    ('raft/types.py', "'conf change: truncated'"),
    ('raft/types.py', "f'conf change: unknown type {t}'"),
    ('raft/types.py', "f'not a vote message: {t!r}'"),
    ('raft/unstable.py', "f'unstable.slice[{lo},{hi}) out of bound [{self.offset},{self.offset + len(self.entries)}]'"),
    ('server/auth_ops.py', "f'not an auth mutation: {kind}'"),
    ('server/watch_hub.py', "'watch hub not installed'"),
    ('server/watcher_group.py', "'watcher already in group'"),
    ('storage/raft_log.py', "'no entries'"),
    ('storage/raft_log.py', "'snapshot out of date'"),
    ('storage/raft_log.py', "f'compact {index} beyond last {last}'"),
    ('storage/raft_log.py', "f'entries hi {hi} beyond last index {last}'"),
    ('storage/raft_log.py', "f'index {index} already compacted'"),
    ('storage/raft_log.py', "f'index {i} compacted'"),
    ('storage/raft_log.py', "f'index {i} unavailable'"),
    ('storage/raft_log.py', "f'index {lo} compacted (first is {offset + 1})'"),
    ('storage/raft_log.py', "f'missing log entry [last: {last}, append at: {entries[0].index}]'"),
    ('storage/raft_log.py', "f'raft log: gap or corrupt entry at index {e.index}'"),
    # petcd's peer protocol (handshake, frames, peer HTTP): between petcd members, logged when a peer is refused.
    ('transport/http.py', "f'malformed HTTP status line from {url}: {lines[0]!r}'"),
    ('transport/http.py', "f'unsupported peer URL {url!r} (only http(s)://host:port)'"),
    ('transport/transport.py', "'bad peer protocol preamble'"),
    ('transport/transport.py', "f'frame of {size} bytes exceeds limit {wire.MAX_FRAME}'"),
    ('transport/transport.py', "f'undecodable message from {format_id(frm)}: {exc}'"),
    ('transport/wire.py', "'bad handshake reply: error'"),
    ('transport/wire.py', "'bad handshake: not an object'"),
    ('transport/wire.py', "'bad handshake: peer_urls'"),
    ('transport/wire.py', "'bad handshake: protocol/server_version'"),
    ('transport/wire.py', "f'bad handshake: missing {key}'"),
    ('transport/wire.py', "f'bad handshake: {exc}'"),
    ('transport/wire.py', "f'bad handshake: {key}: {exc}'"),
    ('transport/wire.py', "f'frame of {size} bytes exceeds limit {limit}'"),
    # HTTP/1 parse reasons: logged only; the client gets the public text from petcd.errors (see BadRequest).
    ('http/http1.py', "'bad content-length'"),
    ('http/http1.py', "'incomplete request'"),
    ('http/http1.py', "'invalid method'"),
    ('http/http1.py', "'invalid request URI'"),
    ('http/http1.py', "'malformed chunked body'"),
    ('http/http1.py', "'malformed header line'"),
    ('http/http1.py', "'malformed request line'"),
    ('http/http1.py', "'many hosts'"),
    ('http/http1.py', "'no host'"),
    ('http/http1.py', "'request body too large'"),
    ('http/http1.py', "'request header too large'"),
    ('http/http1.py', "'truncated body'"),
    ('http/http1.py', "'unsupported HTTP version'"),
    # Go type names: data inside errors.JSON_UNMARSHAL_TYPE, not messages.
    ('http/gojson.py', "'[]json.RawMessage'"),
    ('http/gojson.py', "'[]uint8'"),
    ('http/gojson.py', "'bool'"),
    ('http/gojson.py', "'map[string]json.RawMessage'"),
    ('http/gojson.py', "'protoreflect.EnumNumber'"),
    ('http/gojson.py', "'string'"),
    ('http/gojson.py', "'uint8'"),
    # Discovery HTTP client and v2 discovery reply checks: retried and logged, the user sees errors.DISCOVERY_*.
    ('discovery/httpclient.py', "'malformed HTTP response'"),
    ('discovery/httpclient.py', "'malformed chunked body'"),
    ('discovery/httpclient.py', "'truncated chunked body'"),
    ('discovery/httpclient.py', "f'malformed status line {lines[0]!r}'"),
    ('discovery/httpclient.py', "f'unsupported URL {url!r} (only http:// is supported)'"),
    ('discovery/httpclient.py', "f'{method} {url}: timed out'"),
    ('discovery/httpclient.py', "f'{method} {url}: {exc}'"),
    ('discovery/service.py', 'f"missing \'=\' in {part!r}"'),
    ('discovery/service.py', "f'bad URL {url!r}'"),
    ('discovery/service.py', "f'unexpected status {status} listing the discovery directory'"),
    ('discovery/service.py', "f'unexpected status {status} reading the size key'"),
    # Lease forwarding to the leader: logged at debug, the client gets errors.TIMEOUT / NOT_LEADER.
    ('server/lease_forward.py', "'leader closed the keepalive stream'"),
    ('server/lease_forward.py', "f'pinning the certificate of {url}: {err}'"),
    ('server/lease_forward.py', "f'{err.code().name}: {err.details()}'"),
    # Paths passed as a v2 error's cause (the message is petcd.v2.errors'), and internal v2 apply checks.
    ('v2/server.py', "'unexpected v2 apply result'"),
    ('v2/store.py', "'/'"),
    ('v2/store.py', "f'{parent}/{seg}'"),
    # TLS pinning failure: raised as ssl.SSLError and handled as a failed dial (logged).
    ('tlsutil.py', "f'{url} presented no certificate'"),
    # Composition of texts that already come from petcd.errors / the flag table (message + usage).
    ('cli.py', "f'{exc}\\n{config_mod.usage_text()}'"),
})


def _literal(node: ast.expr) -> str | None:
    """The source of `node` if it is a string literal (plain or f-string), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return ast.unparse(node)
    if isinstance(node, ast.JoinedStr):
        return ast.unparse(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _literal(node.left)
    return None


def _callee(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return ""


def _hits(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        call: ast.Call | None = None
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            call = node.exc
        elif isinstance(node, ast.Call) and _callee(node) in ("abort", "write") and (
            _callee(node) == "abort" or ast.unparse(node.func) == "sys.stderr.write"
        ):
            call = node
        if call is None:
            continue
        args = list(call.args) + [k.value for k in call.keywords]
        for arg in args:
            text = _literal(arg)
            if text is not None:
                out.append((call.lineno, text))
    return out


def _modules() -> list[Path]:
    return sorted(
        p for p in PKG.rglob("*.py")
        if p.name != "errors.py" and "_pb2" not in p.name
    )


def scan() -> list[tuple[str, int, str]]:
    """Every (module, line, literal) hit outside petcd/errors.py."""
    found: list[tuple[str, int, str]] = []
    for path in _modules():
        rel = path.relative_to(PKG).as_posix()
        for line, text in _hits(ast.parse(path.read_text(), str(path))):
            found.append((rel, line, text))
    return found


def test_no_user_visible_literal_outside_errors_module() -> None:
    new = [f"{m}:{line}: {t}" for m, line, t in scan() if (m, t) not in INTERNAL]
    assert not new, (
        "error text literals outside petcd/errors.py (move them there, or list them in "
        "INTERNAL if they are never shown to a user):\n" + "\n".join(new)
    )


def test_allowlist_has_no_stale_entries() -> None:
    present = {(m, t) for m, _, t in scan()}
    stale = sorted(INTERNAL - present)
    assert not stale, f"INTERNAL entries no longer in the code: {stale}"


@pytest.mark.parametrize(
    "source",
    [
        'raise ValueError("flag provided but not defined: -x")',
        'raise ConfigError(f"bad {x}")',
        'context.abort(grpc.StatusCode.INTERNAL, "boom")',
        'sys.stderr.write("Error: nope\\n")',
    ],
)
def test_scan_catches_literals(source: str) -> None:
    assert _hits(ast.parse(source)), source


def test_scan_accepts_errors_constants() -> None:
    src = "raise ValueError(errors.FLAG_NOT_DEFINED.format(name=n))\nraise errors.NOT_LEADER"
    assert _hits(ast.parse(src)) == []
