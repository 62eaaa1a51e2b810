"""keras-hub's cache protocol: prefill, one or more new queries against the cache, a static cache.

References: keras-hub's own `CachedMultiHeadAttention` (same weights) for dense attention, and Keras's
`MultiHeadAttention` over the whole sequence with the pattern and a causal mask for sparse patterns (a
decoding step's output is that row's).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_hub.layers import CachedMultiHeadAttention

import keras_sparse as ks
from tests.reference import RELATIVE_TOLERANCE, relative_error

BATCH, LENGTH, HEADS, KEY_DIM = 2, 48, 2, 4

PATTERNS = {
    "window": ks.patterns.SlidingWindow(12, block_size=8),
    "bigbird": ks.patterns.BigBird(block_size=8, num_global_blocks=1, num_random_blocks=1),
    "per-head": ks.patterns.PerHead([ks.patterns.SlidingWindow(6), ks.patterns.Strided(5)]),
    "distance-decay": ks.patterns.DistanceDecay(rate=0.2, threshold=0.01, block_size=8),
    "alibi": ks.patterns.DistanceDecay(rate=0.2, threshold=0.01, per_head=True, block_size=8),
}


def inputs():
    return np.random.default_rng(0).normal(size=(BATCH, LENGTH, 8)).astype("float32")


def twins(pattern, causal=True):
    """Keras's layer and a causal sparse layer with the same weights."""
    x = inputs()
    dense = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM)
    dense(x, x)
    sparse = ks.layers.SparseMultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM, pattern=pattern, causal=causal)
    sparse(x, x)
    sparse.set_weights(dense.get_weights())
    return dense, sparse


def empty_cache():
    return tf.zeros((BATCH, 2, LENGTH, HEADS, KEY_DIM))


def reference(dense, pattern, x, key_padding=None):
    """Keras's whole-sequence attention with the pattern, a causal mask (and padding), as the rows to expect."""
    mask = pattern.for_heads(HEADS).mask(LENGTH) & np.tri(LENGTH, dtype=bool)
    mask = mask[None] if mask.ndim == 2 else mask[None]
    if key_padding is not None:
        mask = mask & (key_padding[:, None, :] if mask.ndim == 3 else key_padding[:, None, None, :])
    bias = pattern.for_heads(HEADS).dense_bias(LENGTH)
    if bias is None:
        return dense(x, x, attention_mask=np.broadcast_to(mask, (BATCH, *mask.shape[1:])))
    q, k, v = dense.query_dense(x), dense.key_dense(x), dense.value_dense(x)
    scores = np.einsum("bthd,bshd->bhts", q, k) / np.sqrt(KEY_DIM) + bias
    scores = np.where(mask if mask.ndim == 4 else mask[:, None], scores, -1e9)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return dense.output_dense(np.einsum("bhts,bshd->bthd", probs, v).astype("float32"))


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("name", list(PATTERNS))
def test_decoding_step_by_step_equals_the_whole_sequence(name, jit_compile):
    pattern = PATTERNS[name]
    dense, sparse = twins(pattern)
    x = inputs()
    step = tf.function(lambda q, cache, i: sparse(q, q, cache=cache, cache_update_index=i), jit_compile=jit_compile)
    cache, outputs = empty_cache(), []
    for position in range(LENGTH):
        output, cache = step(x[:, position : position + 1], cache, tf.constant(position))
        outputs.append(output)
    expected = reference(dense, pattern, x)
    assert relative_error(np.concatenate(outputs, axis=1), expected, np.ones(BATCH, bool)) < RELATIVE_TOLERANCE


def test_decoding_steps_compute_offset_biases_from_positions(monkeypatch):
    """A plan that computes the bias from `i - j` in the graph (`TokenTables.offset_bias`) decodes the same rows."""
    from keras_sparse.kernels import gather_plan
    from keras_sparse.layers import sparse_multi_head_attention

    monkeypatch.setattr(gather_plan, "MAX_UNIQUE_TABLE_ROWS", 0)
    sparse_multi_head_attention._gather_plan.cache_clear()
    pattern = PATTERNS["alibi"]
    plan = ks.kernels.plan_gathered_blocks(pattern.for_heads(HEADS), LENGTH, causal=True, single_part=True)
    assert plan.head_groups[0].orders[0].groups[0].parts[0].tables.offset_bias is not None
    dense, sparse = twins(pattern)
    x = inputs()
    step = tf.function(lambda q, cache, i: sparse(q, q, cache=cache, cache_update_index=i))
    cache, outputs = empty_cache(), []
    for position in range(LENGTH):
        output, cache = step(x[:, position : position + 1], cache, tf.constant(position))
        outputs.append(output)
    sparse_multi_head_attention._gather_plan.cache_clear()
    expected = reference(dense, pattern, x)
    assert relative_error(np.concatenate(outputs, axis=1), expected, np.ones(BATCH, bool)) < RELATIVE_TOLERANCE


def test_prefill_then_several_new_queries_with_a_padding_mask():
    pattern = PATTERNS["bigbird"]
    dense, sparse = twins(pattern)
    x = inputs()
    keep = np.ones((BATCH, LENGTH), bool)
    keep[1, 5:9] = False  # left padding inside the prompt
    prompt = 30
    padded = np.concatenate([x[:, :prompt], np.zeros_like(x[:, prompt:])], axis=1)
    mask = keep[:, None, :]  # keras-hub's (B, 1, S) padding mask
    out, cache = sparse(padded, padded, cache=empty_cache(), cache_update_index=0, attention_mask=mask)
    out_steps, cache = sparse(
        x[:, prompt : prompt + 3],
        x[:, prompt : prompt + 3],
        cache=cache,
        cache_update_index=prompt,
        attention_mask=mask,
    )
    expected = np.asarray(reference(dense, pattern, x, keep))
    rows = np.ones(BATCH, bool)
    assert relative_error(np.asarray(out)[:, :prompt], expected[:, :prompt], rows) < RELATIVE_TOLERANCE
    assert relative_error(out_steps, expected[:, prompt : prompt + 3], rows) < RELATIVE_TOLERANCE
    keys = dense.key_dense(x)
    np.testing.assert_allclose(np.asarray(cache)[:, 0, : prompt + 3], np.asarray(keys)[:, : prompt + 3], atol=1e-6)


def test_dense_pattern_speaks_keras_hubs_protocol_as_its_own_layer():
    x = inputs()
    hub = CachedMultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM)
    hub(x, x)
    ours = ks.layers.SparseMultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM)  # Dense(), not causal
    ours(x, x)
    ours.set_weights(hub.get_weights())
    causal = np.broadcast_to(np.tri(LENGTH, dtype=bool), (BATCH, LENGTH, LENGTH))
    for call in (
        dict(cache=empty_cache(), cache_update_index=0, attention_mask=causal),  # prefill
        dict(cache=empty_cache(), cache_update_index=7, attention_mask=causal[:, 7:8]),  # one step
        dict(cache=hub(x, x, cache=empty_cache(), cache_update_index=0)[1]),  # a static cache
    ):
        query = x if call.get("cache_update_index", 0) == 0 else x[:, 7:8]
        expected, expected_cache = hub(query, query, **call)
        actual, actual_cache = ours(query, query, **call)
        assert relative_error(actual, expected, np.ones(BATCH, bool)) < RELATIVE_TOLERANCE
        np.testing.assert_allclose(actual_cache, expected_cache, atol=1e-6)
    output, scores, cache = ours(
        x[:, 7:8], x[:, 7:8], cache=empty_cache(), cache_update_index=7, return_attention_scores=True
    )
    assert scores.shape == (BATCH, HEADS, 1, LENGTH) and cache.shape == (BATCH, 2, LENGTH, HEADS, KEY_DIM)


def test_a_decoding_step_scores_only_the_key_blocks_its_row_allows():
    """BigBird's global rows need every key; its other rows' steps gather a few blocks (a switch picks)."""
    pattern = ks.patterns.BigBird(block_size=8, num_global_blocks=1, num_random_blocks=1)
    plan = ks.kernels.plan_gathered_blocks(pattern, 64, causal=True, single_part=True)
    step = tf.function(lambda q, k, p: ks.kernels.cached_rows_attention(q, k, k, plan, p)[0])
    concrete = step.get_concrete_function(
        tf.TensorSpec((1, 1, 2, 4)), tf.TensorSpec((1, 64, 2, 4)), tf.TensorSpec((1,), tf.int32)
    )

    def graphs(graph):
        yield graph
        for function in graph._functions.values():
            if hasattr(function, "graph"):
                yield from graphs(function.graph)

    widths = {
        op.outputs[0].shape[-1]
        for graph in graphs(concrete.graph)
        for op in graph.get_operations()
        if op.type.startswith("BatchMatMul") and op.get_attr("adj_y")  # query . keys (transposed)
    }
    assert (
        widths == {group.parts[0].num_slots * 8 for group in plan.head_groups[0].orders[0].groups} and max(widths) < 64
    )


def test_cache_errors_name_the_argument():
    layer = ks.layers.SparseMultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM, pattern=PATTERNS["window"])
    x = inputs()
    with pytest.raises(ValueError, match="`cache_update_index`"):
        layer(x, x, cache_update_index=3)
    with pytest.raises(ValueError, match="`cache`"):
        layer(x, x, cache=tf.zeros((BATCH, 2, LENGTH, HEADS + 1, KEY_DIM)), cache_update_index=0)
    lsh = ks.layers.SparseMultiHeadAttention(
        num_heads=HEADS, key_dim=KEY_DIM, pattern=ks.patterns.LSH(num_buckets=4, chunk_size=8)
    )
    with pytest.raises(ValueError, match="`cache`"):
        lsh(x, x, cache=empty_cache(), cache_update_index=0)
    static = ks.layers.SparseMultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM, pattern=PATTERNS["window"], name="w")
    with pytest.raises(ValueError, match="'w'.*positions"):
        static(x[:, :1], x[:, :1], cache=empty_cache())  # a static cache does not say where the query is
