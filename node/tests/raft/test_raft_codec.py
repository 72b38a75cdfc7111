"""Codec round trips and robustness: garbage and truncated input raise ValueError only."""

from __future__ import annotations

import random

import msgpack  # type: ignore[import-untyped]
import pytest
from petcd.raft import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
    decode_message,
    encode_message,
)


def sample_messages() -> list[Message]:
    snap = Snapshot(SnapshotMetadata(10, 3, ConfState((1, 2, 3), (4,))), b"state" * 10)
    return [
        Message(MessageType.MsgHup),
        Message(
            MessageType.MsgApp,
            to=2,
            frm=1,
            term=3,
            log_term=2,
            index=9,
            commit=8,
            entries=[
                Entry(3, 10, EntryType.EntryNormal, b"x" * 50),
                Entry(3, 11, EntryType.EntryConfChange, b"\x00" * 9),
            ],
        ),
        Message(MessageType.MsgAppResp, to=1, frm=2, term=3, index=9, reject=True, reject_hint=7),
        Message(MessageType.MsgSnap, to=2, frm=1, term=3, snapshot=snap),
        Message(MessageType.MsgHeartbeat, to=2, frm=1, term=2**64 - 1, context=b"ctx"),
        Message(MessageType.MsgPreVoteResp, to=1, frm=2, term=4),
    ]


@pytest.mark.parametrize("m", sample_messages(), ids=lambda m: m.type.name)
def test_round_trip(m: Message) -> None:
    assert decode_message(encode_message(m)) == m


def test_truncations_and_garbage_raise_value_error_only() -> None:
    rng = random.Random(42)
    raised = 0
    for m in sample_messages():
        data = encode_message(m)
        for cut in range(len(data)):
            with pytest.raises(ValueError):
                decode_message(data[:cut])
            raised += 1
        for _ in range(200):
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            try:
                decode_message(bytes(b))
            except ValueError:
                raised += 1
    for _ in range(2000):
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        try:
            decode_message(junk)
        except ValueError:
            raised += 1
    assert raised > 1000


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"a": 1},
        [1, 99, 0, 0, 0, 0, 0, 0, False, 0, b"", [], None],  # unknown message type
        [2, 3, 0, 0, 0, 0, 0, 0, False, 0, b"", [], None],  # unknown version
        [1, 3, -1, 0, 0, 0, 0, 0, False, 0, b"", [], None],  # negative id
        [1, 3, 0, 0, 0, 0, 0, 0, 1, 0, b"", [], None],  # reject not bool
        [1, 3, 0, 0, 0, 0, 0, 0, False, 0, "str", [], None],  # context not bytes
        [1, 3, 0, 0, 0, 0, 0, 0, False, 0, b"", [1, 2, 0], None],  # partial entry
        [1, 3, 0, 0, 0, 0, 0, 0, False, 0, b"", [1, 2, 7, b""], None],  # bad entry type
        [1, 3, 0, 0, 0, 0, 0, 0, False, 0, b"", [], [1, 2, [1], [], "x"]],  # bad snap data
        [1, 3, 0, 0, 0, 0, 0, 0, False, 0, b"", [], [1, 2, [1.5], [], b""]],  # bad voter
    ],
)
def test_structurally_invalid_is_value_error(obj: object) -> None:
    with pytest.raises(ValueError):
        decode_message(msgpack.packb(obj, use_bin_type=True))
