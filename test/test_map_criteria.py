"""The map criteria's mechanics (issue 29): NaN never passes, a joined criterion needs both parts, and the docs
table check (docs/map_criteria.md) catches a stale table. The criteria on the trained models and on the uniform
and random maps are judged in test_known_answer.py and test_shortcut_pair.py."""

from __future__ import annotations

import math

import pytest

from act_interp_ros.proofs import map_criteria as mc
from act_interp_ros.proofs import map_criteria_doc as doc


def _criterion(op=">=", threshold=2.0, requires=None) -> mc.Criterion:
    return mc.Criterion("known_answer", "m", "lift", "lift", lambda v: v["x"], op, threshold, "asserted", "1-2x",
                        requires=requires)


def test_nan_never_passes_and_a_joined_criterion_needs_both_parts():
    c = _criterion()
    assert c.passes({"x": 2.0}) and not c.passes({"x": 1.9}) and not c.passes({"x": math.nan})
    faithful = mc.Criterion("known_answer", "m", "faithfulness", "f", lambda v: v["f"], ">=", 1.5, "asserted", "")
    joined = _criterion("<", 0.5, requires=faithful)
    assert joined.passes({"x": 0.1, "f": 2.0})
    assert not joined.passes({"x": 0.1, "f": 1.0})  # a noise map: uncorrelated, but not faithful
    assert not joined.passes({"x": math.nan, "f": 2.0})  # a uniform map: no rank correlation at all
    assert "and f" in joined.describe({"x": 0.1, "f": 1.0})


def test_every_suite_criterion_has_a_measured_range_and_a_known_status():
    for c in (*mc.KNOWN_ANSWER, *mc.SHORTCUT):
        assert c.status in ("asserted", "xfail") and c.measured and c.op in (">=", ">", "<"), c.id
    assert len({c.id for c in mc.KNOWN_ANSWER}) == len(mc.KNOWN_ANSWER)
    assert len({c.id for c in mc.SHORTCUT}) == len(mc.SHORTCUT)


def test_the_docs_check_catches_a_stale_table(tmp_path):
    path = tmp_path / "map_criteria.md"
    table = ("## t\n\nthis model: weights sha256 abc.\n\n| criterion | measured | this | uniform | random | asserted |\n"
             "|---|---|---|---|---|---|\n| a >= 2 | 1-2x | 2.1x (pass) | 1.0x (fail) | 1.0x (fail) | yes |\n")
    doc.write_section("known_answer", table, path)
    doc.check_section("known_answer", table, path)
    with pytest.raises(AssertionError, match="stale"):  # same weights, another number
        doc.check_section("known_answer", table.replace("2.1x", "2.2x"), path)
    other = table.replace("abc", "def").replace("2.1x", "2.2x")  # another training: the numbers may differ ...
    doc.check_section("known_answer", other, path)
    with pytest.raises(AssertionError, match="stale"):  # ... the criteria may not
        doc.check_section("known_answer", other.replace("a >= 2", "a >= 3"), path)
    doc.write_section("known_answer", other, path)  # rewriting replaces the section, keeps the rest
    assert path.read_text().count("criteria:known_answer begin") == 1 and "def" in path.read_text()
    with pytest.raises(AssertionError, match="has no shortcut table"):
        doc.check_section("shortcut", table, path)
