"""The streaming example at a tiny size: three models trained, bits per character reported, the int8 file written."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_streaming_example_writes_its_report_under_out(tmp_path):
    command = [
        sys.executable,
        "examples/streaming/run.py",
        "--out",
        str(tmp_path),
        "--steps",
        "10",
        "--seq-len",
        "64",
        "--stream",
        "100",
        "--generate",
        "256",
        "--dense-generate",
        "128",
    ]
    subprocess.run(command, check=True, capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "results.json", "window_sinks_int8.tflite"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["bpc"]) == {"dense", "window+sinks", "window"}
    assert all(0 < bpc < 8 for bpc in results["bpc"].values())  # below a uniform guess over bytes
    assert results["int8_file"]["argmax_agreement"] >= 0.99
    assert abs(results["streaming_bpc_int8"] - results["streaming_bpc_keras"]) < 0.2
    assert [row["position"] for row in results["ring_int8_generation"]][-1] == 256
