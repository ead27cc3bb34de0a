"""Settings -> engine options, policy loading and the check of a policy against the settings (one place).

Every check that needs the loaded policy happens here, at start-up, with one line naming the parameter:
cameras, joint count, the state token, attention layer/heads/query against the model, the GradCAM layer
and target. Node and replay call the same functions, so they accept and reject the same policies.
"""
from __future__ import annotations

import logging

from act_interp_ros.core import (
    AttentionOptions,
    EnvStateSensitivity,
    InterpretableACT,
    SensitivityConfig,
    load_act_policy,
)
from act_interp_ros.settings import NodeSettings, SettingsError
from act_interp_ros.settings.errors import Raw

__all__ = ["attention_options", "check_policy", "check_policy_options", "env_state_sensitivity", "load_policy"]

logger = logging.getLogger(__name__)


def attention_options(settings: NodeSettings) -> AttentionOptions:
    """The attention parameters as the engine's options (query ``executed``, -1 = all queries, or one index)."""
    q = settings.attention_query
    return AttentionOptions(
        decoder_layer=int(settings.attention_decoder_layer),
        heads=tuple(settings.attention_heads) or None,
        query=q if q == "executed" else (None if q < 0 else int(q)),
    )


def load_policy(settings: NodeSettings, device: str | None = None, *, check_inputs: bool = True) -> InterpretableACT:
    """Load ``settings.policy_path``, :func:`check_policy` it, and wrap it with the attention options.

    ``check_inputs=False`` runs only :func:`check_policy_options` (the caller checks the inputs otherwise,
    e.g. against a dataset's features).

    Raises:
        act_interp_ros.core.PolicyLoadError: the checkpoint cannot be loaded (message says why).
        SettingsError: the policy does not fit the settings (message names the parameter).
    """
    loaded = load_act_policy(settings.policy_path, device=device or settings.device)
    (check_policy if check_inputs else check_policy_options)(settings, loaded.policy)
    return InterpretableACT(loaded.policy, loaded.preprocessor, loaded.postprocessor, attention_options(settings))


def check_policy(settings: NodeSettings, policy) -> None:
    """Raise SettingsError (naming the parameter) when the settings do not fit ``policy`` (an ACTPolicy)."""
    cfg = policy.config
    cameras = list(cfg.image_features)
    state_dim = int(cfg.robot_state_feature.shape[0]) if cfg.robot_state_feature is not None else 0
    env_dim = int(cfg.env_state_feature.shape[0]) if cfg.env_state_feature is not None else 0
    action_dim = int(cfg.action_feature.shape[0])
    if sorted(settings.camera_keys) != sorted(cameras):
        raise SettingsError("camera_keys", f"list the policy's cameras {cameras}", settings.camera_keys)
    n = len(settings.joint_names)
    if state_dim and n != state_dim:
        raise SettingsError("joint_names", f"have {state_dim} joints (the policy's observation.state size)",
                            Raw(f"{n}: {settings.joint_names}"))
    if n != action_dim:
        raise SettingsError("joint_names", f"have {action_dim} joints (the policy's action size)",
                            Raw(f"{n}: {settings.joint_names}"))
    if env_dim and not settings.env_state_topic:
        raise SettingsError("env_state_topic", f"name the topic of the policy's {env_dim}-value "
                            "observation.environment_state (e.g. pickup coordinates)", settings.env_state_topic)
    if not env_dim and settings.env_state_topic:
        raise SettingsError("env_state_topic", "be empty: the policy has no observation.environment_state",
                            settings.env_state_topic)
    if env_dim and settings.env_state_type == "point_stamped" and env_dim > 3:
        raise SettingsError("env_state_type", f"be float64_multi_array for a {env_dim}-value environment state "
                            "(a PointStamped holds 3)", settings.env_state_type)
    for name in ("env_state_scale", "env_state_offset", "env_sensitivity_deltas"):
        values = getattr(settings, name)
        if values and len(values) != env_dim:
            raise SettingsError(name, f"have one entry per env-state value ({env_dim}) or be empty", len(values))
    check_policy_options(settings, policy)


def check_policy_options(settings: NodeSettings, policy) -> None:
    """The checks of :func:`check_policy` that do not concern the inputs: attention layer/heads/query, the
    GradCAM layer, the targets' joints and the occlusion grid against ``policy`` (an ACTPolicy).

    The dataset replay uses this alone: its inputs are checked against the dataset's features instead.
    """
    cfg = policy.config
    action_dim = int(cfg.action_feature.shape[0])
    layers = len(policy.model.decoder.layers)
    layer = settings.attention_decoder_layer
    if not -layers <= layer < layers:
        raise SettingsError("attention_decoder_layer", f"be within {-layers}..{layers - 1} (the model has {layers} "
                            "decoder layer(s))", layer)
    heads = cfg.n_heads
    bad = [h for h in settings.attention_heads if h >= heads]
    if bad:
        raise SettingsError("attention_heads", f"list head indices below {heads} (the model's n_heads)",
                            settings.attention_heads)
    if isinstance(settings.attention_query, int) and settings.attention_query >= cfg.chunk_size:
        raise SettingsError("attention_query", f"be executed, -1 or a decoder query below {cfg.chunk_size} (the "
                            "model's chunk_size)", settings.attention_query)
    if "gradcam" in settings.side_methods:
        backbone = policy.model.backbone
        try:
            backbone.get_submodule(settings.gradcam_layer)
        except AttributeError:
            names = [name for name, _ in backbone.named_children()]
            raise SettingsError("gradcam_layer", f"be a layer of the policy's backbone ({', '.join(names)})",
                                settings.gradcam_layer) from None
    for name, spec in (("gradcam_target", settings.gradcam_target_spec()),
                       ("attribution_target", settings.attribution_target_spec())):
        if spec.joint_index is not None and spec.joint_index >= action_dim:
            raise SettingsError(name, f"name a joint below the policy's action size {action_dim}", getattr(settings, name))
    shorter = min(min(f.shape[-2:]) for f in cfg.image_features.values())
    if settings.occlusion_patch_px > shorter:
        raise SettingsError("occlusion_patch_px", f"be at most the policy's shorter image side {shorter} (0 = default)",
                            settings.occlusion_patch_px)
    if settings.occlusion_stride_px > (settings.occlusion_patch_px or max(1, round(shorter / 8))):
        raise SettingsError("occlusion_stride_px", "be at most the occlusion patch (0 = half the patch)",
                            settings.occlusion_stride_px)


def env_state_sensitivity(policy: InterpretableACT, settings: NodeSettings) -> EnvStateSensitivity | None:
    """The env-state sensitivity check (``env_sensitivity_deltas``; 0.01 per value by default) of a policy with
    an environment state; ``None`` for one without."""
    if not policy.env_state_dim:
        return None
    deltas = tuple(settings.env_sensitivity_deltas) or (0.01,) * policy.env_state_dim
    return EnvStateSensitivity(policy.policy, policy.preprocessor, SensitivityConfig(deltas), policy.postprocessor)
