"""The main job at a tiny size: it trains with pruning, exports and verifies every file, and reports."""

import json
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, "examples/listops")

import run  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def git_status() -> str:
    """`git status --porcelain` of the checkout (tracked changes and untracked, not ignored, files)."""
    try:
        done = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return done.stdout


def test_main_job_writes_by_default_only_where_git_ignores():
    git_status()  # skips outside a git checkout
    default_out = run.parse_args([]).out
    assert default_out == ROOT / "artifacts"
    assert not run.parse_args([]).update_demo_assets
    ignored = subprocess.run(["git", "check-ignore", "-q", str(default_out / "report.md")], cwd=ROOT)
    assert ignored.returncode == 0, "artifacts/ must be ignored by git"


def test_main_job_end_to_end_at_a_tiny_size(tmp_path):
    status_before = git_status()
    demo_files = {path: path.read_bytes() for folder in run.DEMO_ASSETS for path in folder.iterdir()}
    summary = run.main(
        [
            "--seq-len",
            "64",
            "--train",
            "1500",
            "--test",
            "200",
            "--epochs",
            "3",
            "--layers",
            "1",
            "--hidden",
            "32",
            "--heads",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    names = {p.name for p in tmp_path.iterdir()}
    assert {
        "listops.keras",
        "listops_vocab.json",
        "golden.json",
        "listops_float32.tflite",
        "listops_float16.tflite",
        "listops_int8.tflite",
        "micro",
        "report.md",
        "summary.json",
        "training.png",
        "learned_layout.png",
        "accuracy_latency.png",
        "logs",
    } <= names
    assert {p.name for p in (tmp_path / "micro").iterdir()} >= {"listops_model_data.cc", "listops_model_settings.h"}
    assert summary["parameters"]["after"] < summary["parameters"]["before"]  # heads were removed
    accuracy = summary["test_accuracy"]
    assert accuracy["finalized"] == accuracy["pruned"]  # finalize changes no output
    assert accuracy["int8_litert"] >= accuracy["finalized"] - run.INT8_MAX_ACCURACY_DROP
    golden = json.loads((tmp_path / "golden.json").read_text())
    assert golden["input_name"] == "tokens" and len(golden["examples"]) == run.GOLDEN_EXAMPLES
    report = (tmp_path / "report.md").read_text()
    assert "attention_blocks" in report and "int8 `.tflite` in LiteRT" in report
    # Without --update-demo-assets the checkout is left as it was: demo assets untouched, git status unchanged.
    assert {path: path.read_bytes() for folder in run.DEMO_ASSETS for path in folder.iterdir()} == demo_files
    assert git_status() == status_before
