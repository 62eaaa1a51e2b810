"""Each kernel against the dense masked kernel, with padding and attention masks, and their gradients."""

import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks
from keras_sparse.kernels.gathered_blocks import _distance_line
from tests.reference import GRADIENT_TOLERANCE, RELATIVE_TOLERANCE, full_mask, relative_error


def run_kernel(name, pattern, q, k, v, causal, key_mask, attention_mask):
    seq_len, heads = q.shape[1], q.shape[2]
    masks = dict(key_mask=key_mask, attention_mask=attention_mask, return_scores=True)
    if name.startswith("blocked"):
        plan = ks.kernels.plan_gathered_blocks(pattern, seq_len, causal=causal)
        return ks.kernels.gathered_block_attention(
            q, k, v, plan, blockwise_softmax=name == "blocked_blockwise", **masks
        )
    pairs = ks.kernels.plan_token_pairs(pattern, seq_len, heads, causal=causal)
    kernel = ks.kernels.sparse_attention if name == "sparse" else ks.kernels.segment_attention
    return kernel(q, k, v, pairs, **masks)


@pytest.mark.parametrize("name", ["blocked", "blocked_blockwise", "sparse", "segment"])
@pytest.mark.parametrize(
    "pattern",
    [ks.patterns.BigBird(8, seed=2), ks.patterns.SlidingWindow(10, global_tokens=(3,), dilation=2, block_size=8)],
    ids=["bigbird", "window"],
)
@pytest.mark.parametrize("causal", [False, True])
def test_kernel_equals_dense_masked_kernel_with_gradients(name, pattern, causal):
    rng = np.random.default_rng(1)
    batch, seq_len, heads = 2, 45, 2
    q, k, v = (tf.constant(rng.normal(size=(batch, seq_len, heads, 4)).astype("float32")) for _ in range(3))
    key_mask = np.ones((batch, seq_len), bool)
    key_mask[1, 30:] = False
    attention_mask = rng.random((batch, seq_len, seq_len)) < 0.9
    mask = full_mask(pattern.mask(seq_len), key_mask, causal, attention_mask)
    live = mask.any(-1)
    weights = tf.constant(rng.normal(size=(batch, seq_len, heads, 4)).astype("float32") * live[:, :, None, None])

    def loss_and_grads(run):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out, scores = run()
            loss = tf.reduce_sum(out * weights)
        return out, scores, tape.gradient(loss, [q, k, v])

    out, scores, grads = loss_and_grads(
        lambda: run_kernel(name, pattern, q, k, v, causal, tf.constant(key_mask), tf.constant(attention_mask))
    )
    ref, ref_scores, ref_grads = loss_and_grads(
        lambda: ks.kernels.dense_masked_attention(
            q, k, v, full_mask(pattern.mask(seq_len), causal=causal)[0], key_mask, attention_mask, return_scores=True
        )
    )
    assert relative_error(out, ref, live) < RELATIVE_TOLERANCE
    assert (
        relative_error(np.transpose(scores, (0, 2, 1, 3)), np.transpose(ref_scores, (0, 2, 1, 3)), live)
        < RELATIVE_TOLERANCE
    )
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert relative_error(grad, ref_grad, np.ones_like(live)) < GRADIENT_TOLERANCE


@pytest.mark.parametrize(
    ("pattern", "is_line"),
    [
        (ks.patterns.DistanceDecay(0.3, threshold=1e-3, per_head=True, block_size=8), True),  # a + s|i - j|
        (ks.patterns.DistanceDecay(1e37, threshold=1e-30, block_size=8), False),  # clipped at float32's lowest
    ],
    ids=["alibi", "clipped"],
)
def test_biases_computed_from_positions_equal_the_dense_kernel(pattern, is_line, monkeypatch):
    """Plans that compute a bias of `i - j` in the graph (`TokenTables.offset_bias`), forced at a short length."""
    from keras_sparse.kernels import gather_plan

    monkeypatch.setattr(gather_plan, "MAX_UNIQUE_TABLE_ROWS", 0)
    rng = np.random.default_rng(2)
    batch, seq_len, heads = 2, 45, 2
    pattern = pattern.for_heads(heads)
    plan = ks.kernels.plan_gathered_blocks(pattern, seq_len)
    parts = [p for g in plan.head_groups for o in g.orders for group in o.groups for p in group.parts]
    tables = [p.tables.offset_bias for p in parts if p.tables.offset_bias is not None]
    assert tables and all((_distance_line(t) is not None) == is_line for t in tables)
    q, k, v = (tf.constant(rng.normal(size=(batch, seq_len, heads, 4)).astype("float32")) for _ in range(3))
    weights = tf.constant(rng.normal(size=(batch, seq_len, heads, 4)).astype("float32"))

    def loss_and_grads(run):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = run()[0]
            loss = tf.reduce_sum(out * weights)
        return out, tape.gradient(loss, [q, k, v])

    out, grads = loss_and_grads(lambda: ks.kernels.gathered_block_attention(q, k, v, plan))
    ref, ref_grads = loss_and_grads(
        lambda: ks.kernels.dense_masked_attention(q, k, v, pattern.mask(seq_len), bias=pattern.dense_bias(seq_len))
    )
    live = np.ones((batch, seq_len), bool)
    assert relative_error(out, ref, live) < RELATIVE_TOLERANCE
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert relative_error(grad, ref_grad, live) < GRADIENT_TOLERANCE
