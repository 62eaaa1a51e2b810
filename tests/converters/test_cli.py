"""The keras-sparse command: help, exit codes, a report on success, nothing written on failure."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from converters.cli import EXIT_EXISTS, EXIT_OK, EXIT_UNCONVERTIBLE, EXIT_UNVERIFIED, EXIT_USAGE, main
from tests.converters.conftest import retrieval_task


@pytest.fixture(scope="module")
def saved(trained_classifier, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    trained_classifier.save(folder / "model.keras")
    np.save(folder / "calibration.npy", retrieval_task(100, seed=2)[0])
    np.save(folder / "heldout.npy", retrieval_task(64, seed=1)[0])
    return folder


def test_help_documents_every_flag():
    result = subprocess.run(
        [sys.executable, "-m", "converters.cli", "convert", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for flag in (
        "--quantize",
        "--seq-len",
        "--calibration",
        "--verification",
        "--out",
        "--overwrite",
        "--sparse-weights",
    ):
        assert flag in result.stdout


def convert_int8(saved, out, *extra) -> int:
    """Runs `keras-sparse convert` on the saved model in int8 with its calibration data."""
    model, calibration = str(saved / "model.keras"), str(saved / "calibration.npy")
    return main(["convert", model, "--quantize", "int8", "--calibration", calibration, "--out", str(out), *extra])


def test_convert_int8_writes_a_verified_file_and_reports(saved, capsys):
    out = saved / "model_int8.tflite"
    assert convert_int8(saved, out, "--verification", str(saved / "heldout.npy")) == EXIT_OK
    assert out.read_bytes()[4:8] == b"TFL3"
    assert "argmax agreement 100.0%" in capsys.readouterr().out
    assert convert_int8(saved, out) == EXIT_EXISTS


def test_micro_writes_the_bundle(saved, capsys):
    code = main(
        [
            "micro",
            str(saved / "model.keras"),
            "--calibration",
            str(saved / "calibration.npy"),
            "--out",
            str(saved / "micro"),
            "--name",
            "retrieval",
        ]
    )
    assert code == EXIT_OK
    assert (saved / "micro" / "retrieval_model_settings.h").exists()
    assert "kTensorArenaSize" in capsys.readouterr().out


def test_failed_verification_exits_1_and_writes_nothing(saved):
    out = saved / "strict.tflite"
    assert convert_int8(saved, out, "--max-error", "1e-9") == EXIT_UNVERIFIED
    assert not out.exists()


@keras.saving.register_keras_serializable(package="keras_sparse_tests")
class Determinant(keras.layers.Layer):
    def call(self, x):
        return tf.linalg.det(x)


def test_unconvertible_and_usage_errors(saved, tmp_path):
    x = keras.Input((4, 4))
    keras.Model(x, Determinant()(x)).save(tmp_path / "det.keras")
    assert main(["convert", str(tmp_path / "det.keras"), "--out", str(tmp_path / "d.tflite")]) == EXIT_UNCONVERTIBLE
    (tmp_path / "broken.keras").write_bytes(b"not a model")
    assert main(["convert", str(tmp_path / "broken.keras"), "--out", str(tmp_path / "b.tflite")]) == EXIT_USAGE
    model = str(saved / "model.keras")
    assert main(["convert", model, "--quantize", "int8", "--out", str(tmp_path / "x.tflite")]) == EXIT_USAGE
    assert main(["micro", model, "--out", str(tmp_path / "m")]) == EXIT_USAGE
    assert not list(tmp_path.glob("*.tflite"))
