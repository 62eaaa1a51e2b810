"""Why dense attention loses accuracy in int8 at long lengths: TFLite's int8 SOFTMAX output has a fixed
step of 1/256, so a row of near-uniform attention over many more than 256 keys rounds most weights to 0.

The blocked kernel's rows are mostly a few blocks wide, which is why its int8 files stay more accurate than
the dense twin's (benchmarks/tflite.py). This pins the cause: the same near-uniform softmax row, alone in a
model, keeps its mass in int8 when narrow and loses most of it when 1024 wide; and the cure for rows that
must be wide (BigBird's global rows) in full-integer files (TFLite Micro's): the softmax taken blockwise, which
to_tflite does for `full_integer=True`. By default to_tflite's int8 files keep attention in float32, which has
neither problem.
"""

import keras
import numpy as np
import pytest

from converters import predict, to_tflite


def attention_mass_in_int8(width: int, tmp_path) -> np.ndarray:
    """Sum of an int8 file's softmax weights over a row of `width` near-uniform scores (1 when exact)."""
    scores = keras.Input((width,))
    weights = keras.layers.Softmax()(scores)
    total = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(weights)
    model = keras.Model(scores, total)
    samples = np.random.default_rng(0).normal(scale=0.3, size=(64, width)).astype("float32")
    path = tmp_path / f"softmax_{width}.tflite"
    to_tflite(
        model, path, quantization="int8", representative_data=samples, float_outputs=True, max_relative_error=1.0
    )  # the loosest bound: the loss is what is measured
    return predict(path, samples)[:, 0]


@pytest.mark.parametrize("width, low, high", [(96, 0.9, 1.1), (1024, 0.0, 0.5)])
def test_int8_softmax_keeps_narrow_rows_and_loses_wide_ones(width, low, high, tmp_path):
    mass = attention_mass_in_int8(width, tmp_path)
    assert low <= np.median(mass) <= high


def attention_error_in_int8(tmp_path, name: str, full_integer: bool = True) -> float:
    """Mean |int8 - Keras| over mean |Keras| for one attention layer whose rows each see all 1024 keys."""
    import keras_sparse as ks

    keras.utils.set_random_seed(0)
    tokens = keras.Input((1024, 16))
    attention = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=8, pattern=ks.patterns.Dense(block_size=32))
    model = keras.Model(tokens, attention(tokens, tokens))
    samples = np.random.default_rng(0).normal(size=(24, 1024, 16)).astype("float32")
    path = tmp_path / f"{name}.tflite"
    to_tflite(
        model,
        path,
        quantization="int8",
        representative_data=samples,
        float_outputs=True,
        max_relative_error=1.0,
        full_integer=full_integer,
    )
    expected = np.asarray(model.predict(samples, verbose=0))
    return float(np.abs(predict(path, samples) - expected).mean() / np.abs(expected).mean())


@pytest.mark.slow  # 16 s: two int8 conversions of a wide-attention model
def test_blockwise_softmax_keeps_wide_attention_rows_accurate_in_int8(tmp_path, monkeypatch):
    """Full-integer files take their softmaxes blockwise (keras_sparse.kernels.blockwise_softmax); without it the
    same 1024-wide rows lose their weights."""
    import keras_sparse as ks

    blockwise = attention_error_in_int8(tmp_path, "blockwise")
    monkeypatch.setattr(ks.rewrites, "with_blockwise_softmax", lambda model: model)
    one_softmax = attention_error_in_int8(tmp_path, "one_softmax")
    assert blockwise < 0.06 and one_softmax > 2 * blockwise  # measured: 0.036 and 0.126


def test_selective_int8_keeps_wide_attention_rows_accurate_without_the_blockwise_form(tmp_path, monkeypatch):
    """to_tflite's default int8 file keeps the softmax float32: no 1/256 steps, no blockwise form needed."""
    import keras_sparse as ks

    monkeypatch.setattr(ks.rewrites, "with_blockwise_softmax", lambda model: model)
    selective = attention_error_in_int8(tmp_path, "selective", full_integer=False)
    assert selective < 0.06  # measured: 0.033 (full integer: 0.036 blockwise, 0.126 with one softmax)
