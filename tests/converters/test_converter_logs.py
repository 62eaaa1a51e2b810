"""A conversion keeps TensorFlow's routine log lines off stderr, and nothing else: real errors still show.

Reference: the stderr of a fresh process (C++ logs go to file descriptor 2, so capsys cannot see them).
"""

import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import logging, os, sys, warnings
    import keras_sparse as ks
    from converters import to_tflite
    from converters.converter_logs import quiet_converter
    from tests.converters.conftest import build_classifier, retrieval_task

    model = build_classifier(ks.patterns.SlidingWindow(32), layer_norm=True)  # int32 token inputs
    print("=== conversion", file=sys.stderr, flush=True)
    to_tflite(model, sys.argv[1], "int8", retrieval_task(16, seed=0)[0])
    print("=== a real error inside", file=sys.stderr, flush=True)
    with quiet_converter():
        os.write(2, b"E0000 a real error from C++\\n")
        print("a user's own line", file=sys.stderr)
    print("=== after", file=sys.stderr, flush=True)
    warnings.warn("Statistics for quantized inputs were expected (outside a conversion)")
    logging.getLogger("absl").warning("Please consider providing the trackable_obj argument (outside)")
    """
)


def test_an_int8_conversion_prints_no_routine_lines_and_keeps_real_ones(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "m.tflite")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    conversion, rest = run.stderr.split("=== conversion\n", 1)[1].split("=== a real error inside\n")
    inside, after = rest.split("=== after\n")
    assert conversion == "", conversion  # no trackable_obj, Statistics, input_inference_type, I0000/W0000 lines
    assert "E0000 a real error from C++" in inside and "a user's own line" in inside
    assert "Statistics for quantized inputs were expected" in after  # the filters are gone after the block
    assert "trackable_obj" in after
