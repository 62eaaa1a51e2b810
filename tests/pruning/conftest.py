"""Small models with every prunable kind of layer, and data for them."""

import keras
import numpy as np
import pytest

import keras_sparse as ks

SEQ_LEN, DIM = 32, 16


def attention_model(attention="sparse", pattern=None, activation="relu", num_heads=4):
    """tokens (B, 32, 16) -> attention -> Dense(32) -> Dense(8) -> pooled -> Dense(1)."""
    keras.utils.set_random_seed(0)
    x = keras.Input((SEQ_LEN, DIM))
    if attention == "sparse":
        layer = ks.layers.SparseMultiHeadAttention(
            num_heads=num_heads, key_dim=4, pattern=pattern or ks.patterns.Dense(block_size=8), name="attention"
        )
    else:
        layer = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=4, name="attention")
    h = keras.layers.Dense(32, activation=activation, name="hidden")(layer(x, x))
    h = keras.layers.Dense(8, name="project")(h)
    return regression_model(x, h)


def regression_model(x, h):
    """`x` -> ... -> `h` (B, T, D), averaged over positions -> Dense(1), compiled for mean squared error."""
    y = keras.layers.Dense(1, name="out")(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model(x, y)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    return model


@pytest.fixture
def data():
    x = np.random.default_rng(0).normal(size=(64, SEQ_LEN, DIM)).astype("float32")
    return x, x[:, :, 0].mean(axis=1, keepdims=True)


def every_step(sparsity, end_step=6):
    """A schedule that prunes at steps 0..end_step, reaching `sparsity` at end_step."""
    return ks.pruning.PolynomialDecay(0.0, sparsity, begin_step=0, end_step=end_step, frequency=1)
