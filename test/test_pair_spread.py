"""The shortcut pair's thresholds come from its stored trainings (issue 29, item 4): the rule, and the stored rows."""

from __future__ import annotations

import json

import pytest

from act_interp_ros.proofs import map_criteria as mc
from act_interp_ros.proofs import pair_spread as ps


@pytest.mark.parametrize(("values", "status", "threshold"), [
    ((4.0, 4.5, 5.0), "asserted", 3.0),  # every training clears 3x by more than the margin: the criterion itself
    ((3.3, 3.1, 4.0), "asserted", 3.1 * (1 - ps.MARGIN)),  # every training meets it, one narrowly: the margin
    ((3.3, 1.9, 4.0), "asserted", 1.9 * (1 - ps.MARGIN)),  # one misses: 20 % below the worst
    ((1.9, 2.1, 2.5), "xfail", 3.0),  # every training misses: a strict xfail at the criterion
])
def test_an_at_least_criterion_is_asserted_with_the_spreads_margin(values, status, threshold):
    s = ps.Supported("k", 3.0, True, values)
    assert s.status == status and s.threshold == pytest.approx(threshold)
    assert s.met == sum(v >= 3.0 for v in values)
    assert f"({s.met} of 3 trainings meet it)" in s.measured()


def test_an_at_most_criterion_mirrors_it():
    assert ps.Supported("gap", 0.25, False, (0.04, 0.17)).threshold == 0.25
    assert ps.Supported("gap", 0.25, False, (0.04, 0.30)).threshold == pytest.approx(0.36)
    assert ps.Supported("gap", 0.25, False, (0.3, 0.4)).status == "xfail"


def test_without_stored_trainings_the_criterion_is_asserted_as_is(tmp_path):
    empty = tmp_path / "spread.json"
    empty.write_text(json.dumps({"rows": []}))
    s = ps.supported("move.shortcut_over_control", 3.0, path=empty)
    assert (s.threshold, s.status, s.measured()) == (3.0, "asserted", "(not measured)")
    assert "no trainings of the pair stored" in ps.guide_table(empty)


def test_the_pair_has_at_least_three_stored_trainings_with_every_criterion():
    rows = ps.pair_rows()
    assert len({r["seed"] for r in rows}) >= 3, "bench/training_spread.py --only shortcut_pair --seeds 0 1 2"
    keys = [f"map.{c.id}" for c in mc.SHORTCUT] + [
        "error_gap", "shortcut.intervention", "control.intervention", "shortcut.heads_for_cue",
        "control.heads_for_cube", "move.shortcut_over_control", "ablate.shortcut_shadow_over_cube",
        "ablate.control_cube_over_shadow"]
    for row in rows:
        missing = [k for k in keys if k not in row]
        assert not missing, (row["seed"], missing)


def test_the_pair_criteria_read_their_thresholds_from_the_trainings():
    for c in mc.SHORTCUT:
        s = ps.map_supported(c)
        assert (c.threshold, c.status) == (s.threshold, s.status), c.id
        assert c.target == s.criterion
