"""The README's generated tables (topics, parameters, skip reasons), from the code that defines them.

``python -m act_interp_ros.docs_tables [README.md]`` rewrites the text between each pair of markers
``<!-- <name>:begin -->`` / ``<!-- <name>:end -->``; a test keeps the README equal to it.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from act_interp_ros.pipeline.contract import output_contract
from act_interp_ros.pipeline.reasons import SKIP_KINDS
from act_interp_ros.settings import NodeSettings, parameters_markdown

__all__ = ["TABLES", "render_tables", "skip_reasons_markdown", "topics_markdown"]


def topics_markdown() -> str:
    """Every output of a policy with a joint-state and an env-state token, per camera as ``{cam}``."""
    settings = NodeSettings()
    contract = output_contract(settings, has_state=True, has_env_state=True, camera_names=["{cam}"])
    return contract.markdown()


def skip_reasons_markdown() -> str:
    rows = ["| Reason (`skipped.<kind>` in /diagnostics) | When |", "|---|---|"]
    rows += [f"| `{kind}` | {text} |" for kind, text in SKIP_KINDS.items()]
    return "\n".join(rows)


TABLES = {"topics": topics_markdown, "parameters": parameters_markdown, "skip-reasons": skip_reasons_markdown}


def render_tables(text: str) -> str:
    """``text`` with every marked table regenerated (a missing marker pair is an error)."""
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"no <!-- {name}:begin --> ... <!-- {name}:end --> markers")
        text = pattern.sub(lambda m, t=make(): m.group(1) + t + "\n" + m.group(2), text)
    return text


if __name__ == "__main__":  # pragma: no cover - developer tool
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "README.md")
    path.write_text(render_tables(path.read_text()))
