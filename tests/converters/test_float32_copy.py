"""Mixed-precision models (float16/bfloat16 compute) convert through a float32 copy, verified against the user's model.

Reference: the user's own model, computing in float16, on the same inputs (the file within float16's rounding).
"""

import keras
import keras_hub
import numpy as np
import pytest

import converters
import keras_sparse as ks
from converters.float32_copy import PRECISION_TOLERANCE, float32_copy, low_precision
from converters.to_tflite import convert_verified
from tests.converters.conftest import build_classifier, language_model, retrieval_task


@pytest.fixture
def mixed_policy(request):
    """Sets the global dtype policy for the test (the newcomer's `set_global_policy("mixed_float16")`)."""
    keras.config.set_dtype_policy(getattr(request, "param", "mixed_float16"))
    yield keras.config.dtype_policy().name
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("mixed_policy", ["mixed_float16", "mixed_bfloat16"], indirect=True)
def test_a_functional_model_converts_and_is_verified_against_itself(mixed_policy, tmp_path):
    model = build_classifier(ks.patterns.BigBird(32, num_global_blocks=1, num_random_blocks=1), layer_norm=True)
    tokens = retrieval_task(8, seed=1)[0]
    result = converters.to_tflite(model, tmp_path / "m.tflite", verification_data=tokens)
    assert keras.config.dtype_policy().name == mixed_policy  # the user's policy is restored
    expected = np.asarray(model.predict(tokens, verbose=0), "float32")
    assert expected.dtype == np.float32 and model.layers[-1].compute_dtype == mixed_policy.removeprefix("mixed_")
    actual = converters.predict(tmp_path / "m.tflite", tokens)
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert error <= PRECISION_TOLERANCE[mixed_policy.removeprefix("mixed_")]
    assert result.rewrite_relative_error is not None and result.rewrite_relative_error > 0  # float16 rounding seen


def test_only_the_default_bounds_are_loosened_for_float16_rounding(mixed_policy, tmp_path):
    model = build_classifier(ks.patterns.SlidingWindow(32))
    tokens = retrieval_task(8, seed=1)[0]

    def bounds(max_relative_error, min_argmax_agreement):
        verified = convert_verified(
            model,
            tmp_path / "m.tflite",
            "float32",
            None,
            tokens,
            None,
            sparse_weights=False,
            max_relative_error=max_relative_error,
            min_argmax_agreement=min_argmax_agreement,
            float_outputs=False,
            full_integer=False,
        )
        return verified.max_relative_error, verified.min_argmax_agreement

    assert bounds(None, None) == (PRECISION_TOLERANCE["float16"], converters.MODES["float16"].min_argmax_agreement)
    assert bounds(0.5, 1.0) == (0.5, 1.0)  # the user's bounds, as given
    with pytest.raises(converters.VerificationError, match="relative error"):  # float16 rounding is above 1e-6
        converters.to_tflite(model, tmp_path / "m.tflite", verification_data=tokens, max_relative_error=1e-6)
    assert not (tmp_path / "m.tflite").exists()


def test_the_copy_computes_in_float32_with_the_same_weights(mixed_policy):
    model = build_classifier(ks.patterns.SlidingWindow(32))
    copy = float32_copy(model)
    assert low_precision(model) == "float16" and low_precision(copy) is None
    for original, copied in zip(model.weights, copy.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(original, "float32"), np.asarray(copied))


def test_a_keras_hub_task_converts(mixed_policy, tmp_path):
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=32
    )
    task = keras_hub.models.BertTextClassifier(backbone, num_classes=3, preprocessor=None)
    data = {
        "token_ids": np.random.default_rng(0).integers(1, 50, (4, 32)).astype("int32"),
        "padding_mask": np.ones((4, 32), "int32"),
        "segment_ids": np.zeros((4, 32), "int32"),
    }
    result = converters.to_tflite(task, tmp_path / "task.tflite", verification_data=data, seq_len=32)
    assert result.max_relative_error <= PRECISION_TOLERANCE["float16"]


def test_to_micro_converts_a_mixed_precision_model(mixed_policy, tmp_path):
    keras.utils.set_random_seed(0)
    x = keras.Input((16, 4))
    model = keras.Model(x, keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(x)))
    data = np.random.default_rng(0).normal(size=(32, 16, 4)).astype("float32")
    bundle = converters.to_micro(model, tmp_path / "micro", data, name="mixed")
    assert bundle.tflite.max_relative_error <= converters.MODES["int8"].max_relative_error


def test_the_decoder_refuses_a_mixed_precision_model_naming_the_policy(mixed_policy, tmp_path):
    lm = language_model()
    with pytest.raises(ValueError, match=r"set_global_policy\('float32'\).*mixed_float16"):
        converters.to_tflite_decoder(lm, tmp_path / "lm.tflite")
    assert not (tmp_path / "lm.tflite").exists()
