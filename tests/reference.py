"""The test references.

- Keras's own MultiHeadAttention with the same weights and the pattern as a boolean attention mask
  (per-head patterns as a `(B, H, T, T)` mask);
- for patterns with a logit bias, which Keras's layer cannot take, `restated_attention`: Keras's own
  projection sublayers, then attention written out here in plain TF ops (checked against Keras with
  a zero bias).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import keras_sparse as ks

RELATIVE_TOLERANCE = 1e-5
GRADIENT_TOLERANCE = 1e-4
KERNEL_OPTIONS = {
    "blocked": dict(implementation="blocked"),
    "blockwise": dict(implementation="blocked", blockwise_softmax=True),
    "segment": dict(implementation="segment"),
    "sparse": dict(implementation="sparse"),
    "dense": dict(implementation="dense"),
}
"""Every kernel of `SparseMultiHeadAttention` but LSH's, as its keyword arguments."""


def full_mask(pattern_mask: np.ndarray, key_padding=None, causal=False, attention_mask=None) -> np.ndarray:
    """The mask Keras gets: pattern AND padding AND causal AND the user's mask; `(B, T, T)` or `(B, H, T, T)`."""
    seq_len = pattern_mask.shape[-1]
    mask = pattern_mask[None]
    head_axis = pattern_mask.ndim == 3
    if key_padding is not None:
        mask = mask & (key_padding[:, None, None, :] if head_axis else key_padding[:, None, :])
    if causal:
        mask = mask & np.tri(seq_len, dtype=bool)
    if attention_mask is not None:
        mask = mask & (attention_mask[:, None] if head_axis else attention_mask)
    return mask


def twin_layers(pattern, implementation, x, blockwise_softmax=False, **layer_kwargs):
    """A built Keras MultiHeadAttention and a SparseMultiHeadAttention holding the same weights."""
    dense = keras.layers.MultiHeadAttention(**layer_kwargs)
    dense(x, x)
    sparse = ks.layers.SparseMultiHeadAttention(
        pattern=pattern, implementation=implementation, blockwise_softmax=blockwise_softmax, **layer_kwargs
    )
    sparse(x, x)
    sparse.set_weights(dense.get_weights())
    return dense, sparse


def restated_attention(layer: keras.layers.MultiHeadAttention, x, mask: np.ndarray, bias: np.ndarray | None):
    """softmax(q.k / sqrt(d) + bias, masked) . v through `layer`'s projections; mask `(B, [H,] T, T)`."""
    query, key, value = layer.query_dense(x), layer.key_dense(x), layer.value_dense(x)
    scores = tf.einsum("bthd,bshd->bhts", query, key) / np.sqrt(layer.key_dim).astype("float32")
    if bias is not None:
        scores = scores + (bias if bias.ndim == 3 else bias[None])
    mask = mask if mask.ndim == 4 else mask[:, None]
    probs = tf.nn.softmax(tf.where(mask, scores, -1e9), axis=-1)
    return layer.output_dense(tf.einsum("bhts,bshd->bthd", probs, value))


def relative_error(actual, expected, live_rows: np.ndarray) -> float:
    """Max |actual - expected| over rows that have an allowed key, relative to max |expected| there."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = np.abs(expected[live_rows]).max()
    return float(np.abs(actual - expected)[live_rows].max() / max(scale, 1e-30))


def assert_matches_reference(
    pattern, implementation, x, key_padding=None, causal=False, attention_mask=None, **layer_kwargs
):
    """Output (rel. 1e-5) and gradients for the input and every weight (1e-4) against the reference."""
    dense, sparse = twin_layers(pattern, implementation, x, **layer_kwargs)
    batch, seq_len = x.shape[:2]
    effective = sparse.effective_pattern
    mask = full_mask(effective.mask(seq_len), key_padding, causal, attention_mask)
    mask = np.broadcast_to(mask, (batch, *mask.shape[1:]))
    live = mask.any(-1)
    if live.ndim == 3:  # per-head: a row is compared if every head has an allowed key there
        live = live.all(1)
    bias = effective.dense_bias(seq_len)
    out_shape = dense.compute_output_shape(x.shape, x.shape)
    weights = np.random.default_rng(3).normal(size=out_shape) * live[..., None]
    weights = tf.constant(weights, tf.float32)
    x = tf.constant(x)

    def run(call, layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = call()
            loss = tf.reduce_sum(out * weights)
        return out, tape.gradient(loss, [x, *layer.trainable_weights])

    sparse_kwargs = {"use_causal_mask": causal}
    if key_padding is not None:
        sparse_kwargs["value_mask"] = tf.constant(key_padding)
    if attention_mask is not None:
        sparse_kwargs["attention_mask"] = tf.constant(attention_mask)
    out, grads = run(lambda: sparse(x, x, **sparse_kwargs), sparse)
    if bias is None:
        ref, ref_grads = run(lambda: dense(x, x, attention_mask=tf.constant(mask)), dense)
    else:
        ref, ref_grads = run(lambda: restated_attention(dense, x, mask, bias), dense)
    assert relative_error(out, ref, live) < RELATIVE_TOLERANCE
    assert relative_error(grads[0], ref_grads[0], np.ones_like(live)) < GRADIENT_TOLERANCE
    # The key bias's gradient is zero in exact arithmetic (softmax ignores a per-row shift), so weight
    # gradients are measured against the largest weight gradient of the layer.
    scale = max(np.abs(g).max() for g in ref_grads[1:])
    for grad, ref_grad in zip(grads[1:], ref_grads[1:], strict=True):
        assert np.abs(grad - ref_grad).max() / scale < GRADIENT_TOLERANCE


def assert_standard_case_matches(pattern, implementation, masking: str, **layer_kwargs) -> None:
    """The standard layer case: batch 2, length 70, 2 heads; masking is "none", "padding" (batch 1 padded
    from position 50) or "causal"."""
    x = np.random.default_rng(0).normal(size=(2, 70, 12)).astype("float32")
    key_padding = None
    if masking == "padding":
        key_padding = np.ones((2, 70), bool)
        key_padding[1, 50:] = False
    assert_matches_reference(
        pattern,
        implementation,
        x,
        key_padding=key_padding,
        causal=masking == "causal",
        num_heads=2,
        key_dim=6,
        **layer_kwargs,
    )
