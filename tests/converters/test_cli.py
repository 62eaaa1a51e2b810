"""The keras-sparse command: help, exit codes, a report on success, nothing written on failure."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import converters
from converters.cli import (
    EXIT_BUG,
    EXIT_EXISTS,
    EXIT_OK,
    EXIT_UNCONVERTIBLE,
    EXIT_UNVERIFIED,
    EXIT_UNWRITABLE,
    EXIT_USAGE,
    main,
)
from tests.converters.conftest import dict_input_data, dict_input_model, retrieval_task


@pytest.fixture(scope="module")
def saved(trained_classifier, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    trained_classifier.save(folder / "model.keras")
    np.save(folder / "calibration.npy", retrieval_task(100, seed=2)[0])
    np.save(folder / "heldout.npy", retrieval_task(64, seed=1)[0])
    return folder


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["convert", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    for flag in (
        "--quantize",
        "--seq-len",
        "--calibration",
        "--verification",
        "--out",
        "--overwrite",
        "--sparse-weights",
    ):
        assert flag in help_text


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


def convert(saved, out, calibration, *extra) -> int:
    return main(["convert", str(saved / "model.keras"), "--calibration", str(calibration), "--out", str(out), *extra])


@pytest.mark.parametrize(
    "data, extra, words",
    [
        (np.zeros((0, 128), "int32"), ["--quantize", "int8"], "holds no samples"),
        (np.zeros((4, 64), "int32"), [], r"shape \(128,\).*received an array of shape \(4, 64\)"),
        (np.full((4, 128), 16, "int64"), [], r"takes values in \[0, 16\)"),
        (np.zeros((4, 128), "float64"), [], "takes integers"),
        (np.zeros((4, 128), "int32"), ["--max-error", "nan"], "`max_relative_error`"),
        (np.zeros((4, 128), "int32"), ["--min-agreement", "1.5"], "`min_argmax_agreement`"),
        (np.array([{"a": 1}], dtype=object), [], "Cannot read --calibration"),
        (b"not numpy", [], "Cannot read --calibration"),
    ],
)
def test_data_and_argument_problems_exit_2_with_a_named_message(saved, tmp_path, capsys, data, extra, words):
    calibration = tmp_path / "calibration.npy"
    if isinstance(data, bytes):
        calibration.write_bytes(data)
    else:
        np.save(calibration, data, allow_pickle=True)
    assert convert(saved, tmp_path / "m.tflite", calibration, *extra) == EXIT_USAGE
    error = capsys.readouterr().err
    assert re.search(words, error) and "Traceback" not in error
    assert not (tmp_path / "m.tflite").exists()


def test_int64_token_ids_are_accepted(saved, tmp_path):
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, retrieval_task(40, seed=2)[0].astype("int64"))
    assert convert(saved, tmp_path / "m.tflite", calibration, "--quantize", "int8") == EXIT_OK


@pytest.mark.parametrize(
    "command, make, code, words",
    [
        ("convert", lambda tmp: tmp / "missing" / "m.tflite", EXIT_UNWRITABLE, "does not exist"),
        ("convert", lambda tmp: (tmp / "f").write_bytes(b"") or tmp / "f" / "m.tflite", EXIT_UNWRITABLE, "is a file"),
        ("convert", lambda tmp: (tmp / "dir").mkdir() or tmp / "dir", EXIT_UNWRITABLE, "is a folder"),
        ("convert", lambda tmp: (tmp / "m.tflite").write_bytes(b"") or tmp / "m.tflite", EXIT_EXISTS, "--overwrite"),
        ("micro", lambda tmp: (tmp / "f").write_bytes(b"") or tmp / "f", EXIT_UNWRITABLE, "is a file"),
        (
            "micro",
            lambda tmp: (tmp / "m").mkdir() or (tmp / "m" / "a.cc").write_text("") or tmp / "m",
            EXIT_EXISTS,
            "a.cc",
        ),
    ],
)
def test_output_problems_are_found_before_the_model_is_loaded(tmp_path, capsys, command, make, code, words):
    assert main([command, str(tmp_path / "no-such-model.keras"), "--out", str(make(tmp_path))]) == code
    error = capsys.readouterr().err
    assert "`--out`" in error and words in error and "Traceback" not in error


@keras.saving.register_keras_serializable(package="keras_sparse_tests")
class Variance(keras.layers.Layer):
    def call(self, x):
        return keras.ops.var(x, axis=-1, keepdims=True)


def test_a_kernel_litert_cannot_run_exits_3_without_a_traceback(tmp_path, capsys):
    x = keras.Input((16, 8))
    keras.Model(x, keras.layers.Dense(2)(Variance()(x) + x)).save(tmp_path / "variance.keras")
    np.save(tmp_path / "data.npy", np.random.default_rng(0).normal(size=(20, 16, 8)))
    code = main(
        [
            "convert",
            str(tmp_path / "variance.keras"),
            "--quantize",
            "int16x8",
            "--calibration",
            str(tmp_path / "data.npy"),
            "--out",
            str(tmp_path / "v.tflite"),
        ]
    )
    error = capsys.readouterr().err
    assert code == EXIT_UNCONVERTIBLE and "SQUARED_DIFFERENCE" in error and "Traceback" not in error


def test_a_named_npz_feeds_a_model_taking_a_dict(tmp_path):
    dict_input_model().save(tmp_path / "hub.keras")
    np.savez(tmp_path / "calibration.npz", **dict_input_data(32, seed=0))
    code = main(
        [
            "convert",
            str(tmp_path / "hub.keras"),
            "--quantize",
            "int8",
            "--calibration",
            str(tmp_path / "calibration.npz"),
            "--min-agreement",
            "0.9",
            "--out",
            str(tmp_path / "hub.tflite"),
        ]
    )
    assert code == EXIT_OK and (tmp_path / "hub.tflite").read_bytes()[4:8] == b"TFL3"


def test_an_unexpected_error_is_reported_as_a_bug_not_a_traceback(saved, tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(converters, "to_tflite", broken)
    assert main(["convert", str(saved / "model.keras"), "--out", str(tmp_path / "m.tflite")]) == EXIT_BUG
    error = capsys.readouterr().err
    assert "a bug in keras-sparse" in error and "boom" in error and "Traceback" not in error
