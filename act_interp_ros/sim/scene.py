"""The simulated SO-101 pick scene (ROS-free): so101-nexus's MuJoCo ``PickLiftEnv`` with one small cube.

The robot model is MuJoCo Menagerie's SO-101 MJCF as `so101-nexus <https://pypi.org/project/so101-nexus/>`_
vendors it (Apache-2.0, Python >= 3.12; ``so101_nexus/assets/SO101_menagerie/so101.xml``: six position actuators
named like LeRobot's motors, a ``wrist_cam``). The package builds the scene (floor, lights, the cube as a free body at a seeded random position and yaw) and scores the task
(``info["success"]``: the cube grasped by both fingers and lifted above ``lift_threshold``). This module fixes
what the project needs on top of it: 30 Hz control with an integer number of physics substeps, and the
policy's two cameras rendered small (``front``: a fixed view of the workspace; ``wrist``: the model's own
``wrist_cam``), without shadows so a frame costs well under 0.1 s on a CPU (Mesa EGL).

Rendering needs an OpenGL backend: :func:`configure_headless_gl` sets ``MUJOCO_GL=egl`` unless the user chose one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["CAMERA_NAMES", "SimConfig", "configure_headless_gl", "make_pick_env", "sim_unavailable_reason"]

#: the policy's cameras (``observation.images.<name>``), as the project's default ``camera_keys``.
CAMERA_NAMES = ("front", "wrist")


@dataclass(frozen=True)
class SimConfig:
    """What the simulated pick scene looks like and how it is stepped.

    Attributes:
        image_size: (H, W) of every camera image.
        control_hz: control (and camera) rate; one joint-position target per control period.
        substeps: physics steps per control period (timestep = 1 / (control_hz * substeps)).
        spawn_center: (x, y) m of the disc the cube is placed in (the robot base is at the origin, facing +x).
        spawn_radius: (min, max) distance of the cube from ``spawn_center``, m.
        cube_half_size: half the cube's side, m.
        lift_threshold: lift above its resting height (m) that counts as picked, while grasped.
        front_camera: free camera of the ``front`` view: (lookat x, y, z, distance, azimuth deg, elevation deg).
    """

    image_size: tuple[int, int] = (96, 128)
    control_hz: float = 30.0
    substeps: int = 10
    spawn_center: tuple[float, float] = (0.22, 0.0)
    spawn_radius: tuple[float, float] = (0.0, 0.08)
    cube_half_size: float = 0.0125
    lift_threshold: float = 0.05
    front_camera: tuple[float, ...] = (0.17, 0.0, 0.06, 0.45, 180.0, -35.0)

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_hz


def configure_headless_gl() -> None:
    """Select MuJoCo's EGL backend (headless, Mesa or a GPU driver) unless ``MUJOCO_GL`` is already set."""
    backend = os.environ.setdefault("MUJOCO_GL", "egl")
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)


def sim_unavailable_reason() -> str | None:
    """None when the simulator can run here, else one line saying what is missing and how to get it."""
    import importlib.util
    import sys

    if sys.version_info < (3, 12):
        return (f"the MuJoCo SO-101 simulator needs Python >= 3.12 (so101-nexus); this is Python "
                f"{sys.version_info.major}.{sys.version_info.minor}")
    missing = [m for m in ("mujoco", "so101_nexus") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"the simulator needs {' and '.join(missing)}: pip install -e '.[sim]' "
                "(or EXTRAS=ros,test,sim bash scripts/setup_env.sh)")
    return None


def make_pick_env(config: SimConfig):
    """so101-nexus's ``PickLiftEnv`` (pd_joint_pos control) for ``config``; it renders nothing itself.

    Raises RuntimeError with one line when the simulator is not installed. Call it (or
    :func:`configure_headless_gl`) before anything imports ``mujoco``: the GL backend is chosen at import.
    """
    reason = sim_unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    configure_headless_gl()
    from so101_nexus.config import PhysicsConfig, PickConfig
    from so101_nexus.mujoco.pick_env import PickLiftEnv
    from so101_nexus.objects import CubeObject
    from so101_nexus.observations import JointPositions

    period = config.control_period_s
    cfg = PickConfig(
        objects=CubeObject(half_size=config.cube_half_size),
        lift_threshold=config.lift_threshold,
        physics=PhysicsConfig(timestep_s=period / config.substeps, control_period_s=period),
        obs_mode="state",
        observations=[JointPositions()],
        terminate_on_success=False,
        spawn_center=tuple(config.spawn_center),
        spawn_min_radius=config.spawn_radius[0],
        spawn_max_radius=config.spawn_radius[1],
        spawn_angle_half_range_deg=180.0,
        robot_init_qpos_noise=0.0,
    )
    return PickLiftEnv(cfg, control_mode="pd_joint_pos", robot_init_qpos_noise=0.0)
