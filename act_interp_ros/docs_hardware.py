"""The README's hardware table (model size -> forward time -> map rates), generated from bench/results.json.

Every number comes from the benchmark results (``bench/run_benchmarks.py``, BENCHMARKS.md): re-running the
benchmarks and ``python -m act_interp_ros.docs_tables`` keeps the table true; a test keeps it regenerated.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

__all__ = ["hardware_markdown"]

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results.json"


def _cams(config: dict[str, Any]) -> str:
    sizes = list(config["cameras"].values())
    return f"{len(sizes)} x {sizes[0]}" if len(set(sizes)) == 1 else ", ".join(sizes)


def _full_size(results: dict[str, Any]) -> str | None:
    section = results["sections"].get("3")
    if not section or section.get("status") != "ok":
        return None
    config, metrics = results["configs"]["full-size"], section["metrics"]
    forward, gradcam, gxi = (metrics[k]["median"] for k in ("forward_ms", "gradcam_ms", "gradient_x_input_ms"))
    return (f"| full size (dim_model {config['dim_model']}, {config['parameters_M']:g} M parameters) | "
            f"{_cams(config)} | {forward:.0f} ms | {gradcam:.0f} / {gxi:.0f} ms | "
            f"at most {1000 / forward:.1f}/s (1 / forward) | at most {1000 / (gradcam + gxi):.2f} Hz "
            f"(1 / their sum); both at 2 Hz need {metrics['side_methods_2hz_compute_s_per_s']:.2f} s per s | "
            f"§3: benchmark process alone, {results['machine']['torch_threads']} torch threads |")


def _demo_model(results: dict[str, Any]) -> str | None:
    section = results["sections"].get("10")
    if not section or section.get("status") != "ok":
        return None
    runs = section["metrics"]["runs"]
    forward = statistics.median(r["isolated_forward"]["p50_ms"] for r in runs)
    gradcam = statistics.median(r["latency"]["side.gradcam.latency_p50_ms"] for r in runs)
    gxi = statistics.median(r["latency"]["side.gradient_x_input.latency_p50_ms"] for r in runs)
    maps = min(r["maps_fraction"] * r["latency"]["tick_rate_hz"] for r in runs)
    worst = min(r["maps_fraction"] for r in runs)
    from act_interp_ros.proofs.model_cache import DEFAULT_SPEC as spec  # the known-answer model's; image_size (H, W)

    cams = f"{len(spec.cameras)} x {spec.image_size[1]}x{spec.image_size[0]}"
    return (f"| the demo's known-answer ACT (dim_model {spec.dim_model}) | {cams} | {forward:.1f} ms | "
            f"{gradcam:.0f} / {gxi:.0f} ms "
            f"(in the node) | {maps:.1f}/s measured ({100 * worst:.1f} % of 30 Hz ticks, worst of {len(runs)} runs) | "
            f"2 Hz asked (runs not counted) | §10: the live demo, {runs[0]['torch_threads']} torch thread |")


def _small_node(results: dict[str, Any]) -> str | None:
    section = results["sections"].get("5")
    if not section or section.get("status") != "ok" or "side_2hz" not in section["metrics"]:
        return None
    config, node = results["configs"]["small (node)"], section["metrics"]["side_2hz"]["node"]
    diag = node["last_diagnostics"]
    seconds = int(diag["ticks"]) / float(diag["target_rate_hz"])
    side_hz = int(diag["side.gradcam.runs"]) / seconds
    maps = node["maps_pct"] / 100 * float(diag["target_rate_hz"])
    return (f"| small (dim_model {config['dim_model']}) | {_cams(config)} | {node['inference_p50_ms']:.1f} ms "
            f"(in the node) | {float(diag['side.gradcam.latency_p50_ms']):.0f} / "
            f"{float(diag['side.gradient_x_input.latency_p50_ms']):.0f} ms (in the node) | {maps:.1f}/s measured "
            f"({node['maps_pct']:.1f} % of 30 Hz ticks) | {side_hz:.2f} Hz measured (2 Hz asked) | "
            f"§5: live node fed two 480x640 streams over DDS, {diag['torch_threads']} torch thread |")


def hardware_markdown(path: Path = RESULTS) -> str:
    """The table and the line naming the CPU it was measured on."""
    results = json.loads(path.read_text())
    machine = results["machine"]
    rows = [row for row in (_full_size(results), _demo_model(results), _small_node(results)) if row]
    if not rows:
        raise ValueError(f"{path}: none of sections 3, 5, 10 has results")
    flags = ", ".join(f for f in machine.get("cpu_flags", []) if f.startswith("avx512f")) or "no AVX-512"
    gpu = machine.get("gpu") or "no GPU"
    head = ["| ACT model | policy cameras | forward p50 | GradCAM / gradient x input p50 | attention maps | "
            "GradCAM + gradient x input | measured in (BENCHMARKS.md) |", "|---|---|---|---|---|---|---|"]
    caption = (f"Measured on {machine['cpu_model']} ({flags}), {machine['cpus_usable']} CPU cores, {gpu}, "
               f"torch {machine['torch'].split('+')[0]}, LeRobot {machine['lerobot']}; "
               f"{results['created'][:10]}, git {machine['git']['commit']} (`bench/results.json`).")
    return "\n".join(head + rows + ["", caption])
