"""Checkpoints written by every supported LeRobot (0.4.4, 0.5.1, 0.6.1) load and act under the installed one.

test/fixtures/lerobot_versions/lerobot-<minor>/ holds the files each LeRobot's own ``save_pretrained`` wrote
(config.json, processor JSONs and their normalisation safetensors; regenerate with generate.py there).
Weights are built here, with the installed LeRobot, and the directory is loaded through the node's loading
path (``load_act_policy``). Actions are compared bit for bit with LeRobot's own ``select_action``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sensor_msgs.msg import JointState

from act_interp_ros.core import InterpretableACT, PolicyLoadError, load_act_policy, lerobot_compat
from node_harness import Peer, start_node, write_params

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lerobot_versions"
VERSIONS = sorted(p.name for p in FIXTURES.glob("lerobot-*"))
CAMERAS = ("observation.images.front", "observation.images.wrist")


def test_a_fixture_for_every_tested_lerobot_minor():
    minors = {f"lerobot-{'.'.join(v.split('.')[:2])}" for v in lerobot_compat.TESTED_VERSIONS}
    assert minors == set(VERSIONS)
    for name in VERSIONS:
        written_by = (FIXTURES / name / "VERSION").read_text().split()[1]
        assert name == f"lerobot-{'.'.join(written_by.split('.')[:2])}"


def _checkpoint(tmp_path: Path, version: str, seed: int = 0) -> tuple[Path, object]:
    """The fixture files of ``version`` plus locally built weights; returns (dir, the policy that was saved)."""
    from lerobot.policies.act.modeling_act import ACTPolicy
    from safetensors.torch import save_model

    out = tmp_path / version / "pretrained_model"
    shutil.copytree(FIXTURES / version, out)
    config = lerobot_compat.read_act_config(out)
    config.device = "cpu"
    torch.manual_seed(seed)
    policy = ACTPolicy(config).eval()
    save_model(policy, str(out / "model.safetensors"))  # what ACTPolicy.save_pretrained writes for the weights
    return out, policy


def _observations(n: int, seed: int = 1) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"observation.state": torch.randn(6, generator=g) * 30.0,
             **{cam: torch.rand(3, 96, 128, generator=g) for cam in CAMERAS}} for _ in range(n)]


@pytest.mark.parametrize("version", VERSIONS)
def test_checkpoint_of_each_lerobot_acts_exactly_like_lerobots_own_select_action(tmp_path, version):
    """Loaded through the node's path, the policy's actions equal LeRobot's own run of the saved policy
    with the processors LeRobot builds from that version's files, bit for bit, over a whole plan and more."""
    from lerobot.policies.factory import make_pre_post_processors

    path, reference = _checkpoint(tmp_path, version)
    loaded = load_act_policy(path, device="cpu")
    pre, post = make_pre_post_processors(reference.config, pretrained_path=str(path))
    wrapped = InterpretableACT.from_pretrained(str(path), device="cpu")
    reference.reset()
    loaded.policy.reset()
    wrapped.reset()
    for obs in _observations(12):  # n_action_steps 5: three plans
        with torch.inference_mode():
            want = post(reference.select_action(pre(dict(obs))))
            got = loaded.postprocessor(loaded.policy.select_action(loaded.preprocessor(dict(obs))))
            via_wrapper = wrapped.postprocessor(wrapped.select_action(wrapped.preprocessor(dict(obs)),
                                                                      force_model_run=True).action)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        torch.testing.assert_close(via_wrapper, want, rtol=0, atol=0)


@pytest.mark.parametrize("version", VERSIONS)
def test_fields_unknown_to_the_installed_lerobot_are_dropped_with_one_info_line(tmp_path, version, caplog):
    path, _ = _checkpoint(tmp_path, version)
    raw = json.loads((path / "config.json").read_text())
    unknown = lerobot_compat.config_fields_to_drop(raw)
    with caplog.at_level(logging.INFO, logger="act_interp_ros.core.lerobot_compat"):
        load_act_policy(path, device="cpu")
    lines = [r.getMessage() for r in caplog.records if r.name == "act_interp_ros.core.lerobot_compat"]
    if unknown:  # e.g. pretrained_revision (written by 0.6) under LeRobot 0.4.4 / 0.5.1
        assert len(lines) == 1 and all(name in lines[0] for name in unknown), lines
    else:
        assert lines == []


def test_a_field_whose_meaning_is_unknown_is_refused_with_one_line(tmp_path):
    path, _ = _checkpoint(tmp_path, VERSIONS[-1])
    raw = json.loads((path / "config.json").read_text())
    raw["use_future_attention_sink"] = True  # what a LeRobot newer than every tested one might write
    (path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(PolicyLoadError) as err:
        load_act_policy(path, device="cpu")
    text = str(err.value)
    assert "\n" not in text
    assert "use_future_attention_sink" in text and lerobot_compat.lerobot_version() in text
    assert f"lerobot=={lerobot_compat.TESTED_VERSIONS[-1]}" in text


def test_broken_processor_file_fails_with_one_line(tmp_path):
    path, _ = _checkpoint(tmp_path, VERSIONS[0])
    (path / "policy_preprocessor.json").write_text("{not json")
    with pytest.raises(PolicyLoadError) as err:
        load_act_policy(path, device="cpu")
    assert "\n" not in str(err.value) and "processors" in str(err.value)


def test_installed_lerobot_is_in_the_supported_range():
    assert lerobot_compat.is_supported(), lerobot_compat.lerobot_version()
    assert lerobot_compat.is_supported("0.4.4") and lerobot_compat.is_supported("0.6.1")
    assert not lerobot_compat.is_supported("0.4.3") and not lerobot_compat.is_supported("0.7.0")


def test_node_loads_and_acts_with_the_newest_and_oldest_lerobots_checkpoints(tmp_path):
    """The installed act_interp_node process, over DDS, with each end's checkpoint (0.6 written, 0.4 written)."""
    for version in (VERSIONS[-1], VERSIONS[0]):
        path, _ = _checkpoint(tmp_path, version)
        params = write_params(tmp_path / f"{version}.yaml", input_qos="reliable", side_rate_hz=0.0)
        node = start_node(params, path)
        peer = Peer()
        try:
            peer.subscribe(JointState, "/act_interp_node/joint_command")
            with peer.streaming(joints=np.array([0.1, -0.2, 0.3, 0.0, 0.5, 0.8]), size=(96, 128)):
                got = peer.wait_for("/act_interp_node/joint_command", 5, timeout=90)
            assert len(got) >= 5, f"{version}: no commands\n{node.output[-3000:]}"
            assert all(np.all(np.isfinite(m.position)) for m in got)
        finally:
            peer.close()
            node.cleanup()
