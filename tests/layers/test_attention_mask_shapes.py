"""Every attention-mask shape Keras's MultiHeadAttention takes gives Keras's numbers (the pattern ANDed in)."""

import keras
import numpy as np
import pytest

import keras_sparse as ks
from tests.reference import RELATIVE_TOLERANCE, relative_error, twin_layers

BATCH, LENGTH, HEADS = 2, 40, 2
PATTERN = ks.patterns.SlidingWindow(12, global_tokens=(0,), block_size=8)


def key_padding() -> np.ndarray:
    keep = np.ones((BATCH, LENGTH), bool)
    keep[1, 29:] = False
    return keep


def random_mask(shape) -> np.ndarray:
    mask = np.random.default_rng(1).random(shape) < 0.8
    mask[..., 0] = True  # every row keeps a key
    return mask


MASKS = {
    "(B, 1, S) keras-hub padding": lambda: key_padding()[:, None, :],
    "(B, 1, S) int32": lambda: key_padding()[:, None, :].astype("int32"),
    "(1, 1, S)": lambda: key_padding()[1:, None, :],
    "(B, T, S)": lambda: random_mask((BATCH, LENGTH, LENGTH)),
    "(1, T, S)": lambda: random_mask((1, LENGTH, LENGTH)),
    "(T, S)": lambda: random_mask((LENGTH, LENGTH)),
    "(B, T, 1) query rows": lambda: np.broadcast_to(key_padding()[:, :, None], (BATCH, LENGTH, 1)).copy(),
    "(B, H, T, S) per head": lambda: random_mask((BATCH, HEADS, LENGTH, LENGTH)),
    "(B, 1, T, S)": lambda: random_mask((BATCH, 1, LENGTH, LENGTH)),
    "(B, 1, 1, S)": lambda: key_padding()[:, None, None, :],
}


@pytest.mark.parametrize("implementation", ["blocked", "segment"])
@pytest.mark.parametrize("name", list(MASKS))
def test_every_keras_mask_shape_gives_keras_numbers(name, implementation):
    x = np.random.default_rng(0).normal(size=(BATCH, LENGTH, 8)).astype("float32")
    dense, sparse = twin_layers(PATTERN, implementation, x, num_heads=HEADS, key_dim=4)
    mask = MASKS[name]()
    expected_mask = np.broadcast_to(
        mask.astype(bool), (BATCH, HEADS, LENGTH, LENGTH) if mask.ndim == 4 else (BATCH, LENGTH, LENGTH)
    )
    pattern_mask = PATTERN.mask(LENGTH)
    full = expected_mask & (pattern_mask if mask.ndim < 4 else pattern_mask[None, None])
    live = full.any(-1) if full.ndim == 3 else full.any(-1).all(1)
    expected = dense(x, x, attention_mask=full)
    assert relative_error(sparse(x, x, attention_mask=mask), expected, live) < RELATIVE_TOLERANCE


def test_per_head_masks_need_a_shared_pattern():
    x = np.zeros((BATCH, LENGTH, 8), "float32")
    per_head = ks.patterns.PerHead([PATTERN, ks.patterns.Dense(block_size=8)])
    layer = ks.layers.SparseMultiHeadAttention(num_heads=HEADS, key_dim=4, pattern=per_head)
    with pytest.raises(ValueError, match="`attention_mask`.*per-head pattern"):
        layer(x, x, attention_mask=random_mask((BATCH, HEADS, LENGTH, LENGTH)))


@pytest.mark.parametrize("shape", [(LENGTH,), (BATCH, 3, LENGTH, LENGTH), (BATCH, LENGTH, LENGTH - 1), (1, 2, 3, 4, 5)])
def test_masks_keras_would_refuse_are_refused_with_their_shape(shape):
    layer = ks.layers.SparseMultiHeadAttention(num_heads=HEADS, key_dim=4, pattern=PATTERN)
    x = np.zeros((BATCH, LENGTH, 8), "float32")
    with pytest.raises(ValueError, match=r"`attention_mask`.*Received: attention_mask.shape="):
        layer(x, x, attention_mask=np.ones(shape, bool))


def test_a_keras_hub_style_padding_mask_in_a_functional_model_with_unknown_length():
    """keras-hub's backbones take `(None,)` inputs and pass a `(B, 1, T)` int mask; the call sees the length."""
    tokens = keras.Input((None, 8))
    padding = keras.Input((None,), dtype="int32")
    layer = ks.layers.SparseMultiHeadAttention(num_heads=HEADS, key_dim=4, pattern=PATTERN)
    model = keras.Model([tokens, padding], layer(tokens, tokens, attention_mask=keras.ops.expand_dims(padding, 1)))
    x = np.random.default_rng(0).normal(size=(BATCH, LENGTH, 8)).astype("float32")
    keep = key_padding()
    dense = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=4)
    dense(x, x)
    dense.set_weights(layer.get_weights())
    full = PATTERN.mask(LENGTH)[None] & keep[:, None, :]
    expected = dense(x, x, attention_mask=full)
    assert relative_error(model([x, keep.astype("int32")]), expected, full.any(-1)) < RELATIVE_TOLERANCE
