"""The shipped RViz layout (``rviz/act_interp.rviz``), generated from the output contract.

One Image display per overlay the node publishes with the default config: attention and the side methods
enabled, the plan's attention and occlusion (published less often) added but disabled. A test keeps the
shipped file equal to :func:`rviz_config`; regenerate it with ``python -m act_interp_ros.ros.rviz_config``.
Scalars (shares, lifts, proprio attention) are best plotted with ``rqt_plot``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from act_interp_ros.pipeline.contract import OutputContract, output_contract
from act_interp_ros.pipeline.side_methods import LABELS
from act_interp_ros.settings import NodeSettings, load_settings_yaml

HEADER = ("# RViz2 layout for act_interp_ros: every overlay of the SO-101 cameras (generated from the output\n"
          "# contract by `python -m act_interp_ros.ros.rviz_config`; do not edit by hand).\n"
          "# Shares, lifts and proprio attention (std_msgs/Float32) are best plotted with rqt_plot.\n")
DISABLED = ("attention_plan", "occlusion")


def _display(name: str, topic: str, enabled: bool) -> dict:
    return {"Class": "rviz_default_plugins/Image", "Enabled": enabled, "Name": name, "Max Value": 1,
            "Median window": 5, "Min Value": 0, "Normalize Range": True,
            "Topic": {"Depth": 2, "Durability Policy": "Volatile", "Filter size": 10, "History Policy": "Keep Last",
                      "Reliability Policy": "Reliable", "Value": topic},
            "Value": enabled}


def rviz_config(contract: OutputContract, node_name: str = "act_interp_node") -> str:
    """The RViz2 config text for ``contract``'s overlays."""
    labels = {**LABELS, "attention_plan": "Plan attention"}
    displays = [_display(f"{labels[o.method][0].upper()}{labels[o.method][1:]} {o.camera}", o.topic(node_name),
                         o.method not in DISABLED) for o in contract.overlays()]
    doc = {
        "Panels": [{"Class": "rviz_common/Displays", "Help Height": 78, "Name": "Displays",
                    "Property Tree Widget": {"Expanded": [], "Splitter Ratio": 0.5}, "Tree Height": 300},
                   {"Class": "rviz_common/Views", "Expanded": ["/Current View1"], "Name": "Views",
                    "Splitter Ratio": 0.5}],
        "Visualization Manager": {
            "Class": "", "Displays": displays, "Enabled": True,
            "Global Options": {"Background Color": "48; 48; 48", "Fixed Frame": "base_link", "Frame Rate": 30},
            "Name": "root", "Tools": [{"Class": "rviz_default_plugins/MoveCamera"}], "Value": True,
            "Views": {"Current": {"Class": "rviz_default_plugins/Orbit", "Distance": 1.5, "Name": "Current View",
                                  "Target Frame": "<Fixed Frame>", "Value": "Orbit (rviz)"}, "Saved": None}},
        "Window Geometry": {"Height": 1000, "Width": 1600, "X": 0, "Y": 0, "Hide Left Dock": False,
                            "Hide Right Dock": True},
    }
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=120)


def default_rviz_config(repo: Path) -> str:
    settings: NodeSettings = load_settings_yaml(repo / "config" / "so101.yaml", overrides={"policy_path": str(repo)},
                                                validate=False)
    return rviz_config(output_contract(settings))


if __name__ == "__main__":  # pragma: no cover - developer tool
    root = Path(__file__).resolve().parents[2]
    (root / "rviz" / "act_interp.rviz").write_text(default_rviz_config(root))
    sys.exit(0)
