"""The README and docs/ stay true: their generated tables equal the code's (and the benchmark results'), their
links resolve, and the README's two set-up commands are what CI runs."""

from __future__ import annotations

import re

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
