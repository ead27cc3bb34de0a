"""The README stays true: its generated tables equal the code's, and its two set-up commands are what CI runs."""

from __future__ import annotations

import re

from act_interp_ros.docs_tables import TABLES, render_tables


def test_generated_tables_match_the_code(repo_root):
    text = (repo_root / "README.md").read_text()
    for name in TABLES:
        assert f"<!-- {name}:begin -->" in text and f"<!-- {name}:end -->" in text, name
    assert render_tables(text) == text, (
        "README tables are out of date: run `.venv/bin/python -m act_interp_ros.docs_tables README.md`")


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
