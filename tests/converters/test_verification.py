"""Verification cannot be bypassed: NaN never passes a bound, bounds are checked, every output is compared, and the
file is compared with the model the user passed, not with the converter's rewritten copy."""

import keras
import numpy as np
import pytest

import keras_sparse as ks
from converters import ConversionError, VerificationError, to_tflite
from converters.verification import compare, verify
from keras_sparse.rewrites import rewrite_layers
from tests.converters.conftest import SEQ_LEN, build_classifier, retrieval_task


def dense_model(outputs: int = 1):
    keras.utils.set_random_seed(0)
    x = keras.Input((8, 4))
    heads = [keras.layers.Dense(3, name=f"head_{k}")(keras.layers.Flatten()(x)) for k in range(outputs)]
    return keras.Model(x, heads if outputs > 1 else heads[0])


DATA = np.random.default_rng(0).normal(size=(16, 8, 4)).astype("float32")


def poison(layer):
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, np.full_like(bias, np.nan)])


@pytest.mark.parametrize("quantization", ["float32", "dynamic"])
def test_a_model_with_nan_outputs_is_never_verified(tmp_path, quantization):
    model = dense_model()
    poison(model.get_layer("head_0"))
    with pytest.raises(VerificationError, match="The Keras model gave NaN or infinite outputs.*not written"):
        to_tflite(model, tmp_path / "m.tflite", quantization=quantization, verification_data=DATA)
    assert list(tmp_path.iterdir()) == []


def test_every_output_is_verified(tmp_path):
    model = dense_model(outputs=2)
    poison(model.get_layer("head_1"))  # the first output is fine
    with pytest.raises(VerificationError, match="NaN"):
        to_tflite(model, tmp_path / "m.tflite", verification_data=DATA)
    model = dense_model(outputs=2)
    result = to_tflite(model, tmp_path / "m.tflite", verification_data=DATA)
    assert result.max_relative_error < 1e-5 and len(model.outputs) == 2


def test_nan_never_passes_a_comparison():
    expected = [[np.ones((1, 3), "float32")]]
    with pytest.raises(VerificationError, match="The file gave NaN"):
        verify([[np.full((1, 3), np.nan, "float32")]], expected, "The file", 1.0, 0.0)
    with pytest.raises(VerificationError, match="The Keras model gave NaN"):
        verify(expected, [[np.full((1, 3), np.inf, "float32")]], "The file", 1.0, 0.0)
    assert compare(expected, expected).max_relative_error == 0.0
    assert np.isnan(compare([[np.full((1, 3), np.nan, "float32")]], expected).max_relative_error)  # never 0


@pytest.mark.parametrize("argument", ["max_relative_error", "min_argmax_agreement"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1, 1.5, True, "0.1", np.float32("nan")])
def test_bounds_are_numbers_in_zero_one(tmp_path, argument, value):
    with pytest.raises(ValueError, match=f"`{argument}`, expected a number in \\[0, 1\\]"):
        to_tflite(dense_model(), tmp_path / "m.tflite", verification_data=DATA, **{argument: value})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argument", ["sparse_weights", "overwrite", "float_outputs"])
def test_flags_refuse_strings(tmp_path, argument):
    with pytest.raises(ValueError, match=f"`{argument}`, expected True or False"):
        to_tflite(dense_model(), tmp_path / "m.tflite", verification_data=DATA, **{argument: "no"})


@pytest.mark.parametrize("empty", [np.zeros((0, 8, 4), "float32"), [], iter(())])
def test_empty_calibration_is_an_error_not_a_hybrid_file(tmp_path, empty):
    with pytest.raises(ValueError, match="`representative_data`: it holds no samples"):
        to_tflite(dense_model(), tmp_path / "m.tflite", quantization="int8", representative_data=empty)
    assert list(tmp_path.iterdir()) == []


def test_nan_in_the_verification_data_is_named(tmp_path):
    data = DATA.copy()
    data[3, 2, 1] = np.nan
    with pytest.raises(ValueError, match="`verification_data`: input `.*` holds NaN"):
        to_tflite(dense_model(), tmp_path / "m.tflite", verification_data=data)


def test_token_ids_beyond_the_vocabulary_are_named_not_wrapped_in_conversion_errors(trained_classifier, tmp_path):
    calibration, _ = retrieval_task(20, seed=2)
    calibration[5, 7] = 16  # VOCAB is 16
    with pytest.raises(ValueError, match=r"`representative_data`: input `.*` takes values in \[0, 16\)"):
        to_tflite(trained_classifier, tmp_path / "m.tflite", quantization="int8", representative_data=calibration)
    assert list(tmp_path.iterdir()) == []


def test_a_rewrite_that_changes_the_numbers_is_refused(tmp_path, monkeypatch):
    """keras-hub's case: the export copy's attention came out dense, and the file was 'verified' against it."""
    model = build_classifier(ks.patterns.SlidingWindow(16))
    tokens, _ = retrieval_task(32, seed=2)

    def densifying_exportable(model):
        def replace(layer):
            if isinstance(layer, ks.layers.SparseMultiHeadAttention):
                return type(layer).from_config({**layer.get_config(), "pattern": ks.patterns.Dense()})
            return None

        return rewrite_layers(model, replace)

    monkeypatch.setattr(ks, "exportable", densifying_exportable)
    with pytest.raises(ConversionError, match="keras_sparse.exportable.*changed its outputs by"):
        to_tflite(model, tmp_path / "m.tflite", verification_data=tokens, max_relative_error=1.0)
    assert list(tmp_path.iterdir()) == []


def test_the_report_says_how_far_the_rewrites_moved_the_outputs(trained_classifier, held_out, tmp_path):
    result = to_tflite(trained_classifier, tmp_path / "m.tflite", verification_data=held_out[0])
    assert result.rewrite_relative_error < 1e-6  # measured 0 in float32, 1.3e-7 with the int8 blockwise softmax
    assert "export rewrites moved the Keras outputs" in result.report()


class Variance(keras.layers.Layer):
    """A layer whose variance TFLite computes with SQUARED_DIFFERENCE, which has no int16 kernel."""

    def call(self, x):
        return keras.ops.var(x, axis=-1, keepdims=True)


def test_a_kernel_that_fails_while_litert_runs_the_file_is_a_conversion_error(tmp_path):
    x = keras.Input((SEQ_LEN // 8, 8))
    model = keras.Model(x, keras.layers.Dense(2)(Variance()(x) + x))
    data = np.random.default_rng(0).normal(size=(20, SEQ_LEN // 8, 8)).astype("float32")
    with pytest.raises(ConversionError, match="LiteRT .*SquaredDifference.*\n- SQUARED_DIFFERENCE: 16x8 has no int16"):
        to_tflite(model, tmp_path / "m.tflite", quantization="int16x8", representative_data=data)
    assert list(tmp_path.iterdir()) == []
