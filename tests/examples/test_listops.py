"""The main job at a tiny size: it trains with pruning, exports and verifies every file, and reports."""

import json
import sys

sys.path.insert(0, "examples/listops")

import run  # noqa: E402


def test_main_job_end_to_end_at_a_tiny_size(tmp_path):
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
            "--no-demo-assets",
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
