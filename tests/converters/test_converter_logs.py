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
    import keras, numpy as np, tensorflow as tf
    import keras_sparse as ks
    from converters import ConversionError, to_micro, to_tflite, to_tflite_decoder
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

    def decoder(activation="relu"):
        lm = ks.models.SparseCausalLM(12, 1, 16, 2, 32, ks.patterns.SlidingWindow(8, (0,), 8), activation=activation)
        lm(np.zeros((1, 8), "int32"))
        return lm

    print("=== a decoder conversion", file=sys.stderr, flush=True)
    to_tflite_decoder(decoder(), sys.argv[1] + ".decoder", prefill_length=4, verification_steps=4)
    print("=== a failed decoder conversion", file=sys.stderr, flush=True)
    try:
        determinant = lambda x: x + tf.linalg.det(tf.linalg.diag(x[..., :2]))[..., None]
        to_tflite_decoder(decoder(determinant), sys.argv[1] + ".failed", prefill_length=4, verification_steps=4)
    except ConversionError as error:
        print("=== our decoder error", error, file=sys.stderr, flush=True)
    print("=== a failed micro decoder conversion", file=sys.stderr, flush=True)
    try:
        to_micro(decoder(determinant), sys.argv[1] + ".micro", np.zeros((1, 8), "int32"))
    except ConversionError as error:
        print("=== our micro error", error, file=sys.stderr, flush=True)
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
    conversion, error = (
        stderr.split("=== a failed conversion\n", 1)[1].split("=== a decoder conversion")[0].split("=== our error")
    )
    assert conversion == "", conversion  # no MLIR loc(...) dump, no advice to enable TF Select (Flex)
    assert "MatrixDeterminant in layer determinant" in error and "Fix:" in error


def test_the_decoder_converters_print_no_routine_lines_and_explain_their_failures(stderr):
    decoder = stderr.split("=== a decoder conversion\n", 1)[1]
    conversion, failed = decoder.split("=== a failed decoder conversion\n")
    assert conversion == "", conversion  # no SavedModel reader/loader lines, no XNNPACK line
    conversion, rest = failed.split("=== our decoder error")
    assert conversion == "", conversion
    error, micro = rest.split("=== a failed micro decoder conversion\n")
    assert "MatrixDeterminant" in error and "Fix:" in error
    conversion, error = micro.split("=== our micro error")
    assert conversion == "", conversion
    assert "MatrixDeterminant" in error and "Fix:" in error
