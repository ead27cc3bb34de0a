"""RViz layouts generated from the output contract: the shipped one and one for any checkpoint or params file.

One Image display per overlay the node publishes: attention and the side methods enabled, the plan's attention
and occlusion (published less often) added but disabled. A test keeps the shipped ``rviz/act_interp.rviz`` (the
default config's front and wrist cameras) equal to :func:`default_rviz_config`. For other cameras,
``act_interp_rviz_config --params my_params.yaml [--policy DIR] -o my.rviz`` writes the layout of that
configuration, and ``live.launch.py rviz:=true`` does the same for the launch's params file and policy.
Scalars (shares, lifts, proprio attention) are best plotted with ``rqt_plot``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from act_interp_ros.pipeline.contract import OutputContract, output_contract
from act_interp_ros.pipeline.side_methods import LABELS
from act_interp_ros.settings import NodeSettings, load_settings_yaml
from act_interp_ros.settings.errors import SettingsError, SettingsFileError
from act_interp_ros.settings.params_file import default_config

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
    """The shipped layout: ``repo/config/so101.yaml``'s cameras."""
    settings: NodeSettings = load_settings_yaml(repo / "config" / "so101.yaml", overrides={"policy_path": str(repo)},
                                                validate=False)
    return rviz_config(output_contract(settings))


def checkpoint_camera_keys(policy_path: str | Path) -> list[str] | None:
    """The ``observation.images.*`` inputs of a local checkpoint's ``config.json`` in its order (None: no local
    config, e.g. a hub repo id). Raises SettingsFileError when the file is unreadable or lists no camera."""
    config = Path(policy_path).expanduser() / "config.json"
    if not config.is_file():
        return None
    try:
        features = json.loads(config.read_text()).get("input_features", {})
    except (OSError, ValueError) as exc:
        raise SettingsFileError(f"cannot read the policy's cameras: {exc}", source=str(config)) from None
    keys = [k for k in features if k.startswith("observation.images.")]
    if not keys:
        raise SettingsFileError("the policy has no observation.images.* input: it has no camera to show",
                                source=str(config))
    return keys


def rviz_config_for(params_file: str | Path | None = None, policy_path: str | Path | None = None,
                    node_name: str = "act_interp_node") -> str:
    """The layout for a configuration: the params file's cameras (the shipped ``so101.yaml`` when None).

    With only ``policy_path`` (a local checkpoint), its cameras on the shipped params' other settings. With
    both, the checkpoint's cameras must be the params file's ``camera_keys`` (the node refuses to start
    otherwise); a mismatch raises SettingsFileError naming both.
    """
    source = Path(params_file) if params_file else default_config()
    settings = load_settings_yaml(source, overrides={"policy_path": str(policy_path or "unused")}, validate=False)
    cams = checkpoint_camera_keys(policy_path) if policy_path else None
    if cams is not None and list(cams) != list(settings.camera_keys):
        if params_file:
            raise SettingsFileError(
                f"camera_keys {list(settings.camera_keys)} are not the policy's cameras {cams} ({policy_path}): "
                "set camera_keys, camera_topics and camera_transports for them", source=str(params_file))
        values = {**settings.to_mapping(), "camera_keys": cams,
                  "camera_topics": [f"/camera/{k.split('.', 2)[2]}/image_raw" for k in cams],
                  "camera_transports": ["raw"] * len(cams)}
        settings = NodeSettings.from_mapping(values, validate=False)
    return rviz_config(output_contract(settings), node_name)


def main(argv: list[str] | None = None) -> int:
    """``act_interp_rviz_config``: write the RViz layout for a params file and/or checkpoint."""
    parser = argparse.ArgumentParser(
        prog="act_interp_rviz_config",
        description="Write an RViz2 layout with one Image display per overlay act_interp_node publishes for "
                    "these cameras (rviz2 -d OUT).")
    parser.add_argument("--params", metavar="FILE", help="the node's ROS 2 params file (default: the shipped "
                        "config/so101.yaml)")
    parser.add_argument("--policy", metavar="DIR", help="a LeRobot pretrained_model directory: its cameras")
    parser.add_argument("-o", "--output", metavar="OUT", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    try:
        text = rviz_config_for(args.params, args.policy)
    except (SettingsError, SettingsFileError) as exc:
        print(f"act_interp_rviz_config: {exc}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output} ({text.count('rviz_default_plugins/Image')} image displays)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover - developer tool
    if len(sys.argv) == 1:  # regenerate the shipped layout
        root = Path(__file__).resolve().parents[2]
        (root / "rviz" / "act_interp.rviz").write_text(default_rviz_config(root))
        sys.exit(0)
    sys.exit(main())
