"""The documentation's generated tables, from the code (and benchmark results) that define them.

``python -m act_interp_ros.docs_tables`` rewrites, in every file of :data:`DOCS`, the text between each pair of
markers ``<!-- <name>:begin -->`` / ``<!-- <name>:end -->``; ``python -m act_interp_ros.docs_tables FILE`` only
that file. A test (test/test_readme.py) keeps every file equal to it.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from act_interp_ros.pipeline.contract import output_contract
from act_interp_ros.pipeline.reasons import SKIP_KINDS
from act_interp_ros.settings import NodeSettings, parameters_markdown

__all__ = ["DOCS", "TABLES", "render_file", "render_tables", "skip_reasons_markdown", "topics_markdown"]

REPO = Path(__file__).resolve().parents[1]


def topics_markdown() -> str:
    """Every output of a policy with a joint-state and an env-state token, per camera as ``{cam}``."""
    settings = NodeSettings()
    contract = output_contract(settings, has_state=True, has_env_state=True, camera_names=["{cam}"])
    return contract.markdown()


def skip_reasons_markdown() -> str:
    rows = ["| Reason (`skipped.<kind>` in /diagnostics) | When |", "|---|---|"]
    rows += [f"| `{kind}` | {text} |" for kind, text in SKIP_KINDS.items()]
    return "\n".join(rows)


def cli_markdown() -> str:
    from act_interp_ros.docs_cli import cli_markdown as make
    return make()


def known_answer_maps_markdown() -> str:
    from act_interp_ros.docs_maps import known_answer_maps_markdown as make
    return make()


def shortcut_pair_markdown() -> str:
    from act_interp_ros.proofs.pair_spread import guide_table
    return guide_table()


def hardware_markdown() -> str:
    from act_interp_ros.docs_hardware import hardware_markdown as make
    return make()


TABLES = {"topics": topics_markdown, "parameters": parameters_markdown, "skip-reasons": skip_reasons_markdown,
          "cli": cli_markdown, "hardware": hardware_markdown, "known-answer-maps": known_answer_maps_markdown,
          "shortcut-pair": shortcut_pair_markdown}

#: file (relative to the repository) -> the generated tables it holds.
DOCS = {"README.md": ("hardware",), "docs/node-reference.md": ("topics", "parameters", "skip-reasons"),
        "docs/cli-reference.md": ("cli",), "docs/methods.md": ("known-answer-maps",),
        "docs/shortcut-guide.md": ("shortcut-pair",)}


def render_tables(text: str, names: tuple[str, ...] | None = None) -> str:
    """``text`` with the named tables (default: every table) regenerated (a missing marker pair is an error)."""
    for name in names or tuple(TABLES):
        pattern = re.compile(rf"(<!-- {name}:begin -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"no <!-- {name}:begin --> ... <!-- {name}:end --> markers")
        table = TABLES[name]()
        text = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    return text


def render_file(relative: str) -> str:
    """The file ``relative`` (a key of :data:`DOCS`) with its tables regenerated."""
    return render_tables((REPO / relative).read_text(), DOCS[relative])


if __name__ == "__main__":  # pragma: no cover - developer tool
    targets = [str(Path(p).resolve().relative_to(REPO)) for p in sys.argv[1:]] or list(DOCS)
    for relative in targets:
        (REPO / relative).write_text(render_file(relative))
        print(f"regenerated {relative}")
