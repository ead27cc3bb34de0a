"""Dataset features against a real LeRobot ``ACTConfig`` (built by the project's checkpoint helpers)."""

from __future__ import annotations

import pytest

from act_interp_ros.core.checkpoints import SmallACTSpec, make_act_config
from act_interp_ros.dataset import DatasetError, LeRobotDatasetSource, check_policy_features
from act_interp_ros.dataset.synthetic import build_synthetic_dataset, synthetic_features

FRONT, WRIST, TOP = "observation.images.front", "observation.images.wrist", "observation.images.top"
SIZE = (48, 64)


def _config(cameras=None, state_dim=6, env_state_dim=0, action_dim=6):
    cameras = {FRONT: SIZE, WRIST: SIZE} if cameras is None else cameras
    return make_act_config(SmallACTSpec(cameras=cameras, state_dim=state_dim, env_state_dim=env_state_dim,
                                        action_dim=action_dim))


def _features(env_state=False, cameras=("front", "wrist")):
    return synthetic_features(SIZE, cameras, use_videos=True, env_state=env_state)


def _error(features, config, **kwargs) -> str:
    with pytest.raises(DatasetError) as exc:
        check_policy_features(features, config, **kwargs)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("dataset features do not match the policy: ")
    return msg


def test_matching_features():
    match = check_policy_features(_features(env_state=True), _config(env_state_dim=6))
    assert match.camera_map == {FRONT: FRONT, WRIST: WRIST}
    assert match.resize == {} and not match.needs_resize
    assert (match.state_key, match.env_state_key, match.action_key) == (
        "observation.state", "observation.environment_state", "action")
    # the policy without an env-state token leaves the dataset's env state unused
    match = check_policy_features(_features(env_state=True), _config())
    assert match.env_state_key is None and "observation.environment_state" in match.unused


def test_size_difference_is_reported_separately(caplog):
    config = _config(cameras={FRONT: (96, 128), WRIST: SIZE})
    match = check_policy_features(_features(), config)
    assert match.resize == {FRONT: (SIZE, (96, 128))} and match.needs_resize
    assert any("48x64, policy expects 96x128" in r.getMessage() for r in caplog.records)
    msg = _error(_features(), config, allow_resize=False)
    assert "size: observation.images.front is 48x64, policy expects 96x128 (resizing disabled)" in msg
    assert "missing" not in msg


def test_missing_camera_and_camera_map():
    config = _config(cameras={TOP: SIZE})
    msg = _error(_features(), config)
    assert f"camera {TOP} is missing (policy expects (3, 48, 64), dataset cameras: {FRONT}, {WRIST})" in msg
    match = check_policy_features(_features(), config, camera_map={TOP: WRIST})
    assert match.camera_map == {TOP: WRIST} and FRONT in match.unused
    assert match.policy_images({FRONT: "f", WRIST: "w"}) == {TOP: "w"}
    msg = _error(_features(), config, camera_map={TOP: "observation.images.side"})
    assert "camera observation.images.side (mapped from observation.images.top) is missing" in msg
    msg = _error(_features(), config, camera_map={TOP: FRONT, "observation.images.bogus": WRIST})
    assert "camera map names observation.images.bogus, which the policy does not have" in msg


def test_vector_mismatches_listed_in_one_line():
    msg = _error(_features(cameras=("front",)), _config(state_dim=7, env_state_dim=3, action_dim=5))
    assert "camera observation.images.wrist is missing" in msg
    assert "observation.state has shape (6,), policy expects (7,)" in msg
    assert "observation.environment_state (environment state) is missing (policy expects (3,))" in msg
    assert "action has shape (6,), policy expects (5,)" in msg
    assert msg.count(";") == 3


def test_feature_of_wrong_kind():
    features = _features()
    features["observation.state"] = dict(features[FRONT])
    msg = _error(features, _config())
    assert "observation.state is video, expected a numeric vector (6,)" in msg


def test_check_on_a_written_dataset(tmp_path):
    ds = build_synthetic_dataset(tmp_path / "ds", n_episodes=1, episode_steps=2, image_size=SIZE,
                                 cameras=("front",), use_videos=False)
    source = LeRobotDatasetSource.open(ds.root)
    match = check_policy_features(source, _config(cameras={FRONT: (96, 128)}))
    assert match.camera_map == {FRONT: FRONT} and match.resize == {FRONT: (SIZE, (96, 128))}
    with pytest.raises(DatasetError):
        check_policy_features(source, _config())  # the policy also wants a wrist camera
