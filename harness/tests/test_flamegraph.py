"""harness.flamegraph: collapsed-stack parsing, own/inclusive rankings and the SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness import flamegraph

RAW = """\
<module> (a.py:1);outer (a.py:6) 1
Thread._bootstrap (threading.py:988);run (a.py:9);outer (a.py:6);inner (a.py:2) 129
<module> (a.py:1);outer (a.py:6);inner (a.py:2) 132
<module> (a.py:1);rec (a.py:20);rec (a.py:20) 5
not a stack line
"""


def test_parse_skips_malformed_lines_and_keeps_counts() -> None:
    stacks = flamegraph.parse(RAW)
    assert len(stacks) == 4
    assert flamegraph.total(stacks) == 267
    assert stacks[1][0][-1] == "inner (a.py:2)"


def test_own_ranks_innermost_frames_and_inclusive_counts_each_stack_once() -> None:
    stacks = flamegraph.parse(RAW)
    assert flamegraph.top_own(stacks, 2) == [("inner (a.py:2)", 261), ("rec (a.py:20)", 5)]
    inclusive = dict(flamegraph.top_total(stacks))
    assert inclusive["outer (a.py:6)"] == 262
    assert inclusive["rec (a.py:20)"] == 5  # recursion does not double-count
    text = flamegraph.table("own", flamegraph.top_own(stacks, 1), 267)
    assert "97.75  inner (a.py:2)" in text


def test_svg_is_well_formed_with_a_box_per_frame_and_escaped_labels() -> None:
    doc = flamegraph.svg(flamegraph.parse(RAW), "t <1>")
    root = ET.fromstring(doc)
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("<module> (a.py:1) (138 samples") for t in titles)
    assert any(t.startswith("all (267 samples, 100.00%)") for t in titles)
    assert "t &lt;1&gt;" in doc


def test_svg_of_no_samples_is_an_empty_graph() -> None:
    root = ET.fromstring(flamegraph.svg([], "empty"))
    assert list(root.iter("{http://www.w3.org/2000/svg}rect"))[1:] == []
