"""Why dense attention loses accuracy in int8 at long lengths: TFLite's int8 SOFTMAX output has a fixed
step of 1/256, so a row of near-uniform attention over many more than 256 keys rounds most weights to 0.

The blocked kernel's rows are a few blocks wide, which is why its int8 files stay accurate where the dense
twin's do not (benchmarks/tflite.py). This pins the cause: the same near-uniform softmax row, alone in a
model, keeps its mass in int8 when narrow and loses most of it when 1024 wide.
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
        model, path, quantization="int8", representative_data=samples, float_outputs=True, max_relative_error=10.0
    )  # verification off: the loss is what is measured
    return predict(path, samples)[:, 0]


@pytest.mark.parametrize("width, low, high", [(96, 0.9, 1.1), (1024, 0.0, 0.5)])
def test_int8_softmax_keeps_narrow_rows_and_loses_wide_ones(width, low, high, tmp_path):
    mass = attention_mass_in_int8(width, tmp_path)
    assert low <= np.median(mass) <= high
