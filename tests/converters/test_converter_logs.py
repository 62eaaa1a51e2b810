"""A conversion keeps TensorFlow's routine log lines off stderr, and nothing else: real errors still show.

Reference: the stderr of a fresh process (C++ logs go to file descriptor 2, so capsys cannot see them).
"""

import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import logging, os, sys, warnings
    import keras, tensorflow as tf
    import keras_sparse as ks
    from converters import ConversionError, to_tflite
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

    class Determinant(keras.layers.Layer):  # MatrixDeterminant: a Flex op, no TFLite builtin
        def call(self, x):
            return tf.linalg.det(x)[..., None]

    x = keras.Input((4, 4))
    print("=== a failed conversion", file=sys.stderr, flush=True)
    try:
        to_tflite(keras.Model(x, Determinant(name="determinant")(x)), sys.argv[1] + ".failed")
    except ConversionError as error:
        print("=== our error", error, file=sys.stderr, flush=True)
    """
)


@pytest.fixture(scope="module")
def stderr(tmp_path_factory) -> str:
    """SCRIPT's stderr."""
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path_factory.mktemp("logs") / "m.tflite")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stderr


def test_an_int8_conversion_prints_no_routine_lines_and_keeps_real_ones(stderr):
    conversion, rest = stderr.split("=== conversion\n", 1)[1].split("=== a real error inside\n")
    inside, after = rest.split("=== after\n")
    after = after.split("=== a failed conversion\n")[0]
    assert conversion == "", conversion  # no trackable_obj, Statistics, input_inference_type, I0000/W0000 lines
    assert "E0000 a real error from C++" in inside and "a user's own line" in inside
    assert "Statistics for quantized inputs were expected" in after  # the filters are gone after the block
    assert "trackable_obj" in after


def test_a_failed_conversion_shows_our_error_without_the_converter_s_diagnostics(stderr):
    conversion, error = stderr.split("=== a failed conversion\n", 1)[1].split("=== our error")
    assert conversion == "", conversion  # no MLIR loc(...) dump, no advice to enable TF Select (Flex)
    assert "MatrixDeterminant in layer determinant" in error and "Fix:" in error
