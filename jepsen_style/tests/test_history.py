"""Pairing rules, JSON lines round trip, and the Jepsen log / EDN readers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from jepsen_style.history import (
    Event,
    HistoryError,
    Input,
    Output,
    events_of,
    pair,
    read_jsonl,
    write_jsonl,
)
from jepsen_style.jepsen_log import parse_edn_line, parse_log_text, parse_value
from jepsen_style.tests.helpers import ev


def test_pairing_ok_info_fail_and_unfinished() -> None:
    h = [
        ev(0, "invoke", "write", 1, 10),
        ev(1, "invoke", "cas", (1, 2), 11),
        ev(2, "invoke", "read", None, 12),
        ev(0, "ok", "write", 1, 13),
        ev(1, "fail", "cas", (1, 2), 14),
        ev(2, "info", "read", ":timed-out", 15),
        ev(3, "invoke", "write", 4, 16),  # never completes
    ]
    ops = pair(h)
    assert [op.input for op in ops] == [
        Input("write", None, 1), Input("read", None, None), Input("write", None, 4)
    ]
    assert [op.id for op in ops] == [0, 1, 2]
    assert (ops[0].call, ops[0].ret, ops[0].output) == (10, 13, Output("ok", 1))
    assert ops[1].open and ops[1].ret == math.inf and ops[1].output.unknown
    assert ops[2].open and ops[2].call == 16
    kept = pair(h, keep_failed={"cas"})
    assert kept[1].input.f == "cas" and kept[1].output == Output("fail", (1, 2))
    assert kept[1].ret == 14


def test_process_may_invoke_again_after_info() -> None:
    h = [ev(0, "invoke", "write", 1, 0), ev(0, "info", "write", None, 1),
         ev(0, "invoke", "write", 2, 2), ev(0, "ok", "write", 2, 3)]
    ops = pair(h)
    assert [(op.open, op.input.value) for op in ops] == [(True, 1), (False, 2)]


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([ev(0, "invoke", "read", None, 0), ev(0, "invoke", "read", None, 1)],
         "already has a request in flight"),
        ([ev(0, "ok", "read", 1, 0)], "without a matching invoke"),
        ([ev(0, "invoke", "read", None, 0), ev(0, "ok", "write", 1, 1)], "does not match"),
        ([ev(0, "invoke", "read", None, 5), ev(0, "ok", "read", 1, 4)], "goes backwards"),
        ([ev(0, "begin", "read", None, 0)], "unknown event type"),
    ],
)
def test_broken_histories_are_rejected(events: list[Event], message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        pair(events)


def test_jsonl_round_trip(tmp_path: Path) -> None:
    h = [
        ev(0, "invoke", "cas", (1, 2), 100, key="k"),
        ev(1, "invoke", "read", None, 100, key="k"),
        ev(1, "ok", "read", 1, 200, key="k"),
        ev(1, "invoke", "write", "s", 200, key="k"),
        ev(0, "info", "cas", None, 300, key="k"),
        ev(1, "ok", "write", "s", 400, key="k"),
    ]
    path = tmp_path / "h.jsonl"
    write_jsonl(h, path)
    assert read_jsonl(path) == h
    ops = pair(h)
    write_jsonl(events_of(ops), path)
    assert pair(read_jsonl(path)) == ops


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"process": 0, "type": "invoke", "f": "read"}', "missing field"),
        ('{"process": 0, "type": "wat", "f": "read", "time": 1}', "type must be one of"),
        ('{"process": 0, "type": "ok", "f": "read", "time": 1, "value": {"a": 1}}',
         "unsupported value"),
        ('{"process": 0, "type": "ok", "f": "read", "time": "x"}', "time must be an integer"),
    ],
)
def test_bad_jsonl_is_a_clear_error(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(HistoryError, match=message) as info:
        read_jsonl(path)
    assert f"{path}:1" in str(info.value)


def test_edn_values() -> None:
    assert parse_value("nil") is None
    assert parse_value("[1 4]") == (1, 4)
    assert parse_value("[1, [2 3]]") == (1, (2, 3))
    assert parse_value(":timed-out") == ":timed-out"
    assert parse_value('"x 0 0 y"') == "x 0 0 y"
    assert parse_value("-7") == -7
    with pytest.raises(HistoryError):
        parse_value("[1 2")
    with pytest.raises(HistoryError):
        parse_value("1 2")


def test_jepsen_log_tabs_spaces_and_noise() -> None:
    text = (
        "INFO  jepsen.util - 2\t:invoke\t:cas\t[4 3]\n"
        "INFO  some.other - unrelated line\n"
        "INFO  jepsen.util - 2   :fail   :cas    [4 3]\n"
        "INFO  jepsen.util - 5\t:invoke\t:read\tnil\n"
        "INFO  jepsen.util - 5\t:info\t:read\t:timed-out\n"
    )
    events = parse_log_text(text)
    assert [(e.process, e.type, e.f, e.value, e.time) for e in events] == [
        (2, "invoke", "cas", (4, 3), 1),
        (2, "fail", "cas", (4, 3), 3),
        (5, "invoke", "read", None, 4),
        (5, "info", "read", ":timed-out", 5),
    ]


def test_edn_line() -> None:
    e = parse_edn_line('{:process 3, :type :ok, :f :get, :key "5", :value "x 0 1 y"}')
    assert (e.process, e.type, e.f, e.key, e.value) == (3, "ok", "get", "5", "x 0 1 y")
    with pytest.raises(HistoryError, match="missing :f"):
        parse_edn_line("{:process 3, :type :ok}")
