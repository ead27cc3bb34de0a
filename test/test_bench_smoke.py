"""The benchmark harness runs end to end (--quick, tiny model) and writes the JSON and table it promises.

Numbers are not checked (timing targets live in bench/, never in tests); only that the harness works.
"""

from __future__ import annotations

import json
import subprocess
import sys

ROW_KEYS = {"label", "value", "unit", "spread"}


def test_quick_run_writes_json_and_table(tmp_path, repo_root):
    out, md = tmp_path / "results.json", tmp_path / "BENCH.md"
    md.write_text("# Benchmarks\n\nhand-written text stays\n")
    proc = subprocess.run(
        [sys.executable, str(repo_root / "bench" / "run_benchmarks.py"), "--quick", "--model", "tiny", "--threads", "1",
         "--only", "1,2,3,4,9", "--out", str(out), "--md", str(md), "--update-md"],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["schema_version"] == 1 and res["mode"] == "quick" and res["device"] == "cpu"
    assert {"cpu_model", "cpus_usable", "memory_gib", "torch", "torch_threads", "lerobot"} <= set(res["machine"])
    assert res["configs"]["tiny"]["dim_model"] == 32 and res["configs"]["tiny"]["encoder_tokens"] == 26
    assert set(res["sections"]) == {"1", "2", "3", "4", "9"}
    for sid, sec in res["sections"].items():
        assert sec["status"] == "ok", (sid, sec.get("error"))
        assert sec["rows"] and all(ROW_KEYS <= set(r) for r in sec["rows"])
        assert sec["run"].get("rounds", 1) >= 1
    s3, s4, s9 = (res["sections"][k] for k in ("3", "4", "9"))
    assert s3["metrics"]["ratio_gradient_x_input_over_forward"]["median"] > 0 and s3["targets"][0]["limit"] == 2.5
    assert s4["checks"]["messages_received_by_subscriber"] > 0, "section 4 publishes to a real subscriber"
    assert s4["targets"][0]["limit"] == 3.3
    assert s9["metrics"]["occlusion_s"]["n"] == 1 and s9["metrics"]["deletion_perturbations"] == 72
    s1 = res["sections"]["1"]
    assert s1["checks"]["same_chunk_as_plain"] is True
    assert s1["targets"][0]["limit"] == 1.05 and isinstance(s1["targets"][0]["met"], bool)
    assert s1["metrics"]["ratio_ours_over_plain"]["median"] > 0
    assert res["sections"]["2"]["metrics"]["ratio_peer_over_ours"]["n"] >= 1
    text = md.read_text()
    assert "hand-written text stays" in text and "<!-- bench:end -->" in text
    assert "ratio ours / plain" in text and "front 128x96" in text


def test_quick_section_11_runs_the_plain_runner_beside_the_node(tmp_path, repo_root):
    """Section 11: bench/plain_runner.py and the node (sync and async) on the same bag; shares are fractions."""
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(repo_root / "bench" / "run_benchmarks.py"), "--quick", "--model", "tiny", "--threads", "1",
         "--only", "11", "--out", str(out), "--no-md"],
        cwd=repo_root, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sec = json.loads(out.read_text())["sections"]["11"]
    assert sec["status"] == "ok", sec.get("error")
    runs = sec["metrics"]["runs"]["tiny"]
    assert set(runs) == {"plain", "node", "node_async"}
    for arm, arm_runs in runs.items():
        assert len(arm_runs) == 1 and 0 < arm_runs[0]["share"] <= 1, (arm, arm_runs)
        assert arm_runs[0]["actions"] > 0
    assert runs["plain"][0]["runner"]["forwards"] >= 1
    assert runs["node"][0]["maps_line"].startswith("maps: attention")
    assert int(runs["node_async"][0]["diagnostics"]["async.chunks"]) >= 1
    assert sec["targets"][0]["limit"] == 2.0
