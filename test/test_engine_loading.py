"""Checkpoint round trip through LeRobot's real loading code, and each loading error."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from act_interp_ros.core import InterpretableACT, ObservationBuilder, PolicyLoadError, load_act_policy
from act_interp_ros.core.checkpoints import SmallACTSpec, build_policy, save_checkpoint


@pytest.fixture()
def checkpoint(tmp_path):
    spec = SmallACTSpec(seed=3)
    policy, pre, post = build_policy(spec)
    return save_checkpoint(tmp_path / "pretrained_model", policy, pre, post), (policy, pre, post)


def test_round_trip_gives_identical_actions(checkpoint):
    path, (policy, pre, post) = checkpoint
    loaded = load_act_policy(path, device="cpu")
    assert type(loaded.policy).__name__ == "ACTPolicy" and not loaded.policy.training
    rng = np.random.default_rng(0)
    builder = ObservationBuilder(policy.config)
    images = {k: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for k, (h, w) in SmallACTSpec().cameras.items()}
    state = rng.normal(size=6) * 10
    obs = builder.build(images, state)
    expected = post(policy.select_action(pre(obs)))
    wrapped = InterpretableACT(loaded.policy, loaded.preprocessor, loaded.postprocessor)
    step = wrapped.step(builder.build(images, state))
    np.testing.assert_allclose(step.action, expected[0].numpy(), rtol=1e-5, atol=1e-6)


def test_from_pretrained_applies_the_saved_normalisation(tmp_path):
    stats_spec = SmallACTSpec()
    policy, _, _ = build_policy(stats_spec)
    from act_interp_ros.core.checkpoints import default_stats

    stats = default_stats(policy.config)
    stats["action"] = {"mean": torch.full((6,), 100.0), "std": torch.full((6,), 0.001)}
    spec = SmallACTSpec(stats=stats)
    policy, pre, post = build_policy(spec)
    path = save_checkpoint(tmp_path / "ckpt", policy, pre, post)
    wrapped = InterpretableACT.from_pretrained(str(path), device="cpu")
    obs = ObservationBuilder(wrapped.config).build(
        {k: np.zeros((h, w, 3), np.uint8) for k, (h, w) in spec.cameras.items()}, np.zeros(6)
    )
    # Unnormalised actions are mean + std * x: near 100 only if the saved stats were loaded.
    assert np.all(np.abs(wrapped.step(obs).action - 100.0) < 1.0)


def test_missing_path(tmp_path):
    with pytest.raises(PolicyLoadError, match="does not exist"):
        load_act_policy(tmp_path / "nope")


def test_missing_model_file(checkpoint):
    path, _ = checkpoint
    (path / "model.safetensors").unlink()
    with pytest.raises(PolicyLoadError, match="missing model.safetensors"):
        load_act_policy(path)


def test_parent_directory_hint(checkpoint):
    path, _ = checkpoint
    with pytest.raises(PolicyLoadError, match="did you mean .*pretrained_model"):
        load_act_policy(path.parent)


def test_not_an_act_policy(checkpoint):
    path, _ = checkpoint
    config = json.loads((path / "config.json").read_text())
    config["type"] = "diffusion"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(PolicyLoadError, match="'diffusion' policy; act_interp_ros needs an ACT policy"):
        load_act_policy(path)


def test_processors_missing(checkpoint):
    path, _ = checkpoint
    (path / "policy_preprocessor.json").unlink()
    with pytest.raises(PolicyLoadError, match="normalisation processors are missing"):
        load_act_policy(path)


def test_hub_repo_id_offline_says_network_is_needed(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PolicyLoadError, match="needs network access"):
        load_act_policy("someone/act_so101_policy")


def test_unavailable_cuda_is_a_clear_error(checkpoint):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path is for machines without it")
    path, _ = checkpoint
    with pytest.raises(PolicyLoadError, match="CUDA is not available"):
        load_act_policy(path, device="cuda")


def test_copied_checkpoint_loads(checkpoint, tmp_path):
    path, _ = checkpoint
    copy = shutil.copytree(path, tmp_path / "copy" / "pretrained_model")
    assert load_act_policy(copy).policy.config.chunk_size == SmallACTSpec().chunk_size


def test_unreadable_weights_say_permission_denied(checkpoint):
    """Issue 11.12: an unreadable weights file was reported as "No such file or directory".

    Root reads any file, so as root the check runs in a child without the capabilities that bypass file
    permissions (``setpriv --bounding-set -dac_override,-dac_read_search``), as an ordinary user would.
    """
    import subprocess
    import sys

    path, _ = checkpoint
    (path / "model.safetensors").chmod(0)
    code = ("from act_interp_ros.core import load_act_policy, PolicyLoadError\n"
            f"try:\n    load_act_policy({str(path)!r})\nexcept PolicyLoadError as e:\n    print(e)\n")
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable to this test")
        cmd = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        (path / "model.safetensors").chmod(0o644)
    assert "model.safetensors': permission denied" in out.stdout, out.stdout + out.stderr
    assert "No such file" not in out.stdout
