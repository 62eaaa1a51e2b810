"""The streaming example at a tiny size: five models trained, bits per character reported, the int8 file written."""

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).parents[2] / "examples/streaming/run.py"


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
        "--dense-length",
        "128",
    ]
    subprocess.run(command, check=True, capture_output=True)
    results = json.loads((tmp_path / "results.json").read_text())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["report.md", "results.json", results["litert_file"]["name"]])
    assert set(results["bpc"]) == {"dense", "window+sinks", "window"}
    assert set(results["positions"]) == {"sinusoidal", "rotary", "alibi"}
    for row in results["positions"].values():  # the training length, 4x and 8x it, and the ring buffer
        assert set(row) == {"1x", "4x", "8x", "streaming"} and all(0 < bpc < 8 for bpc in row.values())
    assert results["bpc"]["window+sinks"] == results["positions"]["rotary"]["1x"]
    assert all(0 < bpc < 8 for bpc in results["bpc"].values())  # below a uniform guess over bytes
    if "int8_refused" not in results:  # else the float32 file, verified token for token
        assert abs(results["streaming_bpc_int8"] - results["streaming_bpc_keras"]) < 0.2
    assert results["litert_file"]["argmax_agreement"] >= 0.99
    for name in ("ring_litert_generation", "ring_keras_generation"):
        rows = results[name]
        assert rows[-1]["position"] == 256 and len({row["cache_mib"] for row in rows}) == 1  # flat memory
    assert [row["position"] for row in results["dense_full_cache_keras"]] == [128]


@pytest.mark.parametrize(
    "arguments, message",
    [(["--steps", "0"], "--steps: expected a positive integer"), (["--out", "/proc/nope"], "cannot create")],
)
def test_bad_flags_are_named(arguments, message):
    done = subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr
