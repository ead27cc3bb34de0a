"""The test command's fast loop: `bash scripts/test.sh test/test_x.py` runs that file alone and trains only the
models it marks; the no-argument form stays the whole suite at both ends (what .ci/run runs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import prepare_models  # noqa: E402

PYTEST_ARGS = "-n 1 --reruns 1 --rerun-except .* -r fER"


def _dry_run(repo_root, *args: str) -> list[str]:
    env = {**os.environ, "ACT_INTERP_TEST_DRY_RUN": "1"}
    env.pop("ACT_INTERP_TEST_ENDS", None)
    done = subprocess.run(["bash", "scripts/test.sh", *args], cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.removeprefix("[dry-run] ") for line in done.stdout.splitlines() if line.startswith("[dry-run] ")]


def _oldest_list(repo_root) -> str:
    text = (repo_root / "scripts" / "test.sh").read_text()
    return " ".join(re.search(r"OLDEST_END_TESTS=\((.*?)\)", text, re.S).group(1).split())


def test_no_arguments_run_the_whole_suite_at_both_ends_after_every_model(repo_root):
    assert "bash scripts/test.sh\n" in (repo_root / ".ci" / "run").read_text()
    assert _dry_run(repo_root) == [
        "bash scripts/setup_env.sh",
        ".venv/bin/python test/prepare_models.py",
        f".venv/bin/python -m pytest test/ {PYTEST_ARGS}",
        "env OLDEST=1 VENV=.venv-lerobot0.4 LEROBOT=lerobot==0.4.4 bash scripts/setup_env.sh",
        f".venv-lerobot0.4/bin/python -m pytest {_oldest_list(repo_root)} {PYTEST_ARGS}",
    ]


def test_one_file_runs_alone_and_skips_the_oldest_end_when_not_in_its_list(repo_root):
    assert _dry_run(repo_root, "test/test_readme.py") == [
        "bash scripts/setup_env.sh",
        ".venv/bin/python test/prepare_models.py test/test_readme.py",
        f".venv/bin/python -m pytest test/test_readme.py {PYTEST_ARGS}",
    ]


def test_a_file_of_the_oldest_end_runs_there_too_with_the_options(repo_root):
    lines = _dry_run(repo_root, "test/test_node_safety.py::test_x", "test/test_readme.py", "-k", "limits")
    assert lines[1] == ".venv/bin/python test/prepare_models.py test/test_node_safety.py::test_x test/test_readme.py"
    assert lines[2] == (f".venv/bin/python -m pytest test/test_node_safety.py::test_x test/test_readme.py {PYTEST_ARGS}"
                        " -k limits")
    assert lines[4] == f".venv-lerobot0.4/bin/python -m pytest test/test_node_safety.py::test_x {PYTEST_ARGS} -k limits"


def test_options_alone_still_run_the_whole_suite(repo_root):
    lines = _dry_run(repo_root, "-k", "readme")
    assert lines[1] == ".venv/bin/python test/prepare_models.py"
    assert lines[2] == f".venv/bin/python -m pytest test/ {PYTEST_ARGS} -k readme"
    assert lines[4].endswith(f"{_oldest_list(repo_root)} {PYTEST_ARGS} -k readme")


def _listed(repo_root, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, "test/prepare_models.py", "--list", *args], cwd=repo_root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_prepare_models_builds_only_what_the_given_files_mark(repo_root):
    everything = _listed(repo_root)
    assert len(everything) == sum(len(steps) for steps in prepare_models.STEPS.values())
    assert _listed(repo_root, "test/test_readme.py") == []
    assert _listed(repo_root, "test/test_ablation.py") == ["known-answer model"]
    assert _listed(repo_root, "test/test_shortcut_pair.py::test_report_the_pair") == [
        "control model (shortcut pair)", "shortcut model (shortcut pair)",
        "control model evaluation", "shortcut model evaluation", "control model uniform map baseline",
        "shortcut model uniform map baseline", "control model random map baseline",
        "shortcut model random map baseline"]
    assert _listed(repo_root, "test/") == everything


# Source names that build a trained model -> the marker names a test file using them must carry.
USES = {"ensure_known_answer_model": {"known_answer"}, "cached_map_evaluation": {"known_answer_maps"},
        "run_demo": {"known_answer", "known_answer_maps"}, "ensure_pair": {"shortcut_pair"},
        "ensure_shortcut_model": {"shortcut_pair"}, "cached_shortcut_evaluation": {"shortcut_evaluation"},
        "ensure_env_state_model": {"env_state"}}


def test_every_test_file_that_uses_a_trained_model_marks_it(repo_root):
    missing = {}
    for path in sorted((repo_root / "test").glob("test_*.py")):
        if path.name == "test_test_script.py":
            continue
        source = path.read_text()
        wanted = set().union(*(names for word, names in USES.items() if word in source))
        if lacking := wanted - prepare_models.markers_in(path):
            missing[path.name] = sorted(lacking)
    assert not missing, f"add @pytest.mark.trained_models(...) for: {missing}"


def test_unknown_marker_names_are_one_clear_error(tmp_path):
    bad = tmp_path / "test_bad.py"
    bad.write_text("import pytest\npytestmark = pytest.mark.trained_models('no_such_model')\n")
    with pytest.raises(ValueError, match="unknown trained_models"):
        prepare_models.markers_in(bad)


def test_the_env_state_steps_are_the_tests_variants():
    import test_env_state_known_answer as env_test

    labels = [label for label, _ in prepare_models.STEPS["env_state"]]
    assert labels == [f"env-state model ({variant})" for variant in env_test.VARIANTS]
