"""The README and docs/ stay true: their generated tables equal the code's (and the benchmark results'), their
links resolve, and the README's two set-up commands are what CI runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from act_interp_ros.docs_tables import DOCS, TABLES, render_file


def test_every_generated_table_has_a_page():
    assert sorted(name for names in DOCS.values() for name in names) == sorted(TABLES)


@pytest.mark.parametrize("page", sorted(DOCS))
def test_generated_tables_match_the_code(repo_root, page):
    text = (repo_root / page).read_text()
    for name in DOCS[page]:
        assert f"<!-- {name}:begin -->" in text and f"<!-- {name}:end -->" in text, name
    assert render_file(page) == text, (
        f"{page}'s generated tables are out of date: run `.venv/bin/python -m act_interp_ros.docs_tables`")


def test_every_dynamic_parameter_is_named_in_the_params_file_header(repo_root):
    from act_interp_ros.settings.schema import parameter_specs

    dynamic = {spec.name for spec in parameter_specs() if spec.dynamic}
    header = (repo_root / "config" / "so101.yaml").read_text().split("act_interp_node:")[0]
    line = re.search(r"only (.+?) may change\s+#?\s*while the node runs", header, re.S)
    assert line, "config/so101.yaml must say which parameters may change while the node runs"
    named = set(re.findall(r"[a-z]+(?:_[a-z]+)+", line.group(1)))
    assert named == dynamic


def test_the_two_readme_commands_are_the_scripts_ci_runs(repo_root):
    text = (repo_root / "README.md").read_text()
    assert "bash scripts/demo.sh" in text and "bash scripts/test.sh" in text
    assert "bash scripts/test.sh" in (repo_root / ".ci" / "run").read_text()
    for script in ("demo.sh", "test.sh"):
        assert "bash scripts/setup_env.sh" in (repo_root / "scripts" / script).read_text(), script


@pytest.mark.parametrize("value", [-1, "executed", 3, "3"])
def test_the_attention_query_values_the_docs_name_are_accepted(value):
    """docs/node-reference.md: attention_query takes -1 (all queries), executed, or a query index."""
    from act_interp_ros.settings import NodeSettings

    settings = NodeSettings.from_mapping({"policy_path": "user/act_so101", "attention_query": value})
    assert settings.attention_query == (value if value != "3" else 3)


PAGES = ["README.md", "CONTRIBUTING.md",
         *sorted(f"docs/{p.name}" for p in (Path(__file__).parents[1] / "docs").glob("*.md"))]


def test_the_readme_is_a_short_first_page_that_links_the_manual(repo_root):
    text = (repo_root / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for page in ("install-and-versions", "so101-live-guide", "safety", "node-reference", "cli-reference",
                 "offline-replays", "methods", "shortcut-guide", "architecture", "commanding_the_arm", "simulator",
                 "realtime", "offline_region_tools", "map_criteria"):
        assert f"(docs/{page}.md" in text, page
    assert "(CONTRIBUTING.md)" in text and "(BENCHMARKS.md)" in text


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(repo_root, page):
    """Every relative link (and #anchor within the repo's Markdown) points at something that exists."""
    text = (repo_root / page).read_text()
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (repo_root / page).parent / path if path else repo_root / page
        if not resolved.exists():
            missing.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved.read_text()):
            missing.append(target)
    assert not missing, f"{page}: links that do not resolve: {missing}"


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    heads = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("page", PAGES)
def test_figures_name_the_machine_not_here(repo_root, page):
    """Figures are stated with the CPU they were measured on, never as 'here' or 'this machine'."""
    text = re.sub(r"```.*?```", "", (repo_root / page).read_text(), flags=re.S)
    found = re.findall(r"[^.\n]*\b(?:here|this machine|this project's \d-core CPU)\b[^.\n]*", text, re.I)
    assert not found, found


def test_the_live_steps_start_observe_only_with_the_users_params_file(repo_root):
    for page in ("README.md", "docs/so101-live-guide.md"):
        text = (repo_root / page).read_text()
        launch = re.search(r"ros2 launch act_interp_ros live\.launch\.py[^`]*?(?=\n\s*```)", text, re.S).group(0)
        assert "config:=" in launch and "publish_actions:=false" in launch, page


def test_hand_written_table_numbers_match_the_code(repo_root):
    """Numbers in hand-written tables that restate code: the urdf_range gripper limits, the deletion test's
    fractions and cells, integrated gradients' steps (the shadow test's table is generated from its trainings)."""
    import inspect

    from act_interp_ros.core import faithfulness
    from act_interp_ros.core.attribution import PixelIntegratedGradients
    from act_interp_ros.inputs.calibration import URDF_RANGE_LIMITS

    live = (repo_root / "docs" / "so101-live-guide.md").read_text()
    lo, hi = URDF_RANGE_LIMITS["gripper"]
    assert f"the gripper included ({lo:g}..{hi:g} rad)" in live

    methods = (repo_root / "docs" / "methods.md").read_text()
    fractions = "/".join(f"{100 * f:g}" for f in faithfulness.DEFAULT_FRACTIONS)
    cell = inspect.signature(faithfulness.DeletionTest.__init__).parameters["cell"].default
    assert f"top {fractions} % of {cell}x{cell}-pixel cells" in methods
    steps = inspect.signature(PixelIntegratedGradients.__init__).parameters["n_steps"].default
    assert f"along {steps} steps" in methods

