"""The test reference: Keras's own MultiHeadAttention with the same weights and the pattern as a boolean mask."""

from __future__ import annotations

import keras
import numpy as np

import keras_sparse as ks

RELATIVE_TOLERANCE = 1e-5
GRADIENT_TOLERANCE = 1e-4


def full_mask(pattern_mask: np.ndarray, key_padding=None, causal=False, attention_mask=None) -> np.ndarray:
    """The (B, T, T) mask Keras gets: pattern AND padding AND causal AND the user's attention mask."""
    seq_len = pattern_mask.shape[-1]
    mask = pattern_mask[None]
    if key_padding is not None:
        mask = mask & key_padding[:, None, :]
    if causal:
        mask = mask & np.tri(seq_len, dtype=bool)
    if attention_mask is not None:
        mask = mask & attention_mask
    return mask


def twin_layers(pattern, implementation, x, **layer_kwargs):
    """A built Keras MultiHeadAttention and a SparseMultiHeadAttention holding the same weights."""
    dense = keras.layers.MultiHeadAttention(**layer_kwargs)
    dense(x, x)
    sparse = ks.layers.SparseMultiHeadAttention(pattern=pattern, implementation=implementation, **layer_kwargs)
    sparse(x, x)
    sparse.set_weights(dense.get_weights())
    return dense, sparse


def relative_error(actual, expected, live_rows: np.ndarray) -> float:
    """Max |actual - expected| over rows that have an allowed key, relative to max |expected| there."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = np.abs(expected[live_rows]).max()
    return float(np.abs(actual - expected)[live_rows].max() / max(scale, 1e-30))
