"""The README's parameter table, generated from the schema (a test keeps the README equal to it)."""
from __future__ import annotations

import json

from act_interp_ros.settings.schema import parameter_specs

__all__ = ["parameters_markdown"]


def parameters_markdown() -> str:
    """A Markdown table of all parameters (name, type, default, runtime-settable, description)."""
    rows = ["| Parameter | Type | Default | Set at runtime | Description |", "|---|---|---|---|---|"]
    for s in parameter_specs():
        default = json.dumps(s.default).replace("|", "\\|")
        kind = s.ros_type.lower() + (" or string" if s.any_type else "")  # any_type: e.g. -1, 3 or "executed"
        rows.append(f"| `{s.name}` | {kind} | `{default}` | {'yes' if s.dynamic else 'no'} | "
                    f"{s.description} |")
    return "\n".join(rows)
