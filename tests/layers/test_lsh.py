"""Reformer LSH attention in the layer against a NumPy re-statement built from the same hashes."""

import numpy as np
import pytest

import keras_sparse as ks

RELATIVE_TOLERANCE = 1e-5


def reformer_reference(query, key, value, pattern, key_mask, causal):
    """NumPy: per round, mask = same bucket AND in own/previous chunk of the sorted order; rounds by softmax of lse."""
    batch, seq_len, heads, _ = query.shape
    chunk = pattern.chunk_size
    num_chunks = -(-seq_len // chunk)
    padded = num_chunks * chunk
    pad = lambda x: np.concatenate([x, np.zeros((batch, padded - seq_len, *x.shape[2:]), x.dtype)], 1)  # noqa: E731
    query, key, value = pad(query), pad(key), pad(value)
    valid = np.zeros((batch, padded), bool)
    valid[:, :seq_len] = True if key_mask is None else key_mask
    buckets = pattern.buckets(key)  # (B, H, R, T)
    out = np.zeros((batch, padded, heads, value.shape[-1]))
    for b in range(batch):
        for h in range(heads):
            round_outputs, round_lse = [], []
            for r in range(pattern.num_hashes):
                order = np.lexsort((np.arange(padded), buckets[b, h, r]))
                chunk_of = np.empty(padded, int)
                chunk_of[order] = np.arange(padded) // chunk
                same_bucket = buckets[b, h, r][:, None] == buckets[b, h, r][None, :]
                near = (chunk_of[None, :] == chunk_of[:, None]) | (
                    chunk_of[None, :] == (chunk_of[:, None] - 1) % num_chunks
                )
                mask = same_bucket & near & valid[b][None, :]
                if causal:
                    mask &= np.tri(padded, dtype=bool)
                scores = query[b, :, h] @ key[b, :, h].T
                scores = np.where(mask, scores, -1e9)
                scores[np.eye(padded, dtype=bool) & mask] = -1e5
                lse = np.log(np.exp(scores - scores.max(-1, keepdims=True)).sum(-1, keepdims=True)) + scores.max(
                    -1, keepdims=True
                )
                round_outputs.append(np.exp(scores - lse) @ value[b, :, h])
                round_lse.append(lse)
            lse = np.stack(round_lse)
            weights = np.exp(lse - lse.max(0)) / np.exp(lse - lse.max(0)).sum(0)
            out[b, :, h] = (np.stack(round_outputs) * weights).sum(0)
    return out[:, :seq_len]


@pytest.mark.parametrize("num_hashes", [1, 3])
@pytest.mark.parametrize("masking", ["none", "padding", "causal"])
@pytest.mark.parametrize("seq_len", [64, 70])
def test_layer_equals_the_reformer_restatement(num_hashes, masking, seq_len):
    pattern = ks.patterns.LSH(num_buckets=4, num_hashes=num_hashes, chunk_size=16, seed=3)
    x = np.random.default_rng(0).normal(size=(2, seq_len, 12)).astype("float32")
    layer = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=6, pattern=pattern)
    key_mask = None
    if masking == "padding":
        key_mask = np.ones((2, seq_len), bool)
        key_mask[1, 40:] = False
    out = layer(x, x, value_mask=key_mask, use_causal_mask=masking == "causal")
    projected = layer.query_dense(x).numpy()
    keys = projected / np.linalg.norm(projected, axis=-1, keepdims=True)
    attention = reformer_reference(
        projected / np.sqrt(6), keys, layer.value_dense(x).numpy(), pattern, key_mask, masking == "causal"
    )
    expected = layer.output_dense(attention.astype("float32")).numpy()
    live = np.ones((2, seq_len), bool) if key_mask is None else key_mask  # padded query rows are unspecified
    assert np.abs(out - expected)[live].max() / np.abs(expected).max() < RELATIVE_TOLERANCE


@pytest.mark.filterwarnings("error::UserWarning")
def test_lsh_trains_and_saves(tmp_path):
    with pytest.warns(UserWarning, match="Gradients do not exist for variables.*key/kernel"):
        train_and_save(tmp_path)  # shared-QK: the key projection is kept for weight compatibility, unused


def train_and_save(tmp_path):
    import keras

    x = keras.Input((64, 8))
    attention = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=ks.patterns.LSH(4, chunk_size=16))
    model = keras.Model(x, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(attention(x, x))))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    data = np.random.default_rng(0).normal(size=(32, 64, 8)).astype("float32")
    target = data[:, :, 0].mean(1, keepdims=True) * 3
    losses = model.fit(data, target, epochs=5, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    model.save(tmp_path / "lsh.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "lsh.keras")(data[:2]), model(data[:2]), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, call_kwargs, argument",
    [
        ({"implementation": "blocked"}, {}, "implementation"),
        ({"sliding_window": 8}, {}, "implementation"),
        ({}, {"attention_mask": np.ones((1, 32, 32), bool)}, "attention_mask"),
        ({}, {"return_attention_scores": True}, "return_attention_scores"),
    ],
)
def test_lsh_refuses_what_it_cannot_honour(kwargs, call_kwargs, argument):
    x = np.zeros((1, 32, 8), "float32")
    with pytest.raises(ValueError, match=f"`{argument}`"):
        layer = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=ks.patterns.LSH(4), **kwargs)
        layer(x, x, **call_kwargs)


def test_lsh_cannot_be_combined_and_has_no_static_mask():
    with pytest.raises(ValueError, match="LSH"):
        ks.patterns.LSH(4) | ks.patterns.Dense()
    with pytest.raises(ValueError, match="depends on the input"):
        ks.patterns.LSH(4).mask(16)
    with pytest.raises(ValueError, match="`num_buckets`"):
        ks.patterns.LSH(3)


def trax_reference(projected, value, rotations, pattern, key_mask, causal):
    """NumPy (float64) re-statement of transformers' `LSHSelfAttention` in eval mode, from its description: hash with
    the rotations (factorized buckets combined), padding in an extra bucket, sort each round by (bucket, position),
    chain the rounds, attend every key of the chunk and its neighbours with scores `q . k` (k length-normalised and
    divided by sqrt(d)), -1e9 where masked, -1e5 on the query's own position; rounds weighted by softmax(lse)."""
    batch, seq_len, heads, dim = projected.shape
    chunk = pattern.chunk_size
    padded = -(-seq_len // chunk) * chunk
    plain = seq_len <= chunk
    if plain:
        padded = seq_len
    grow = lambda x: np.concatenate([x, np.zeros((batch, padded - seq_len, *x.shape[2:]), x.dtype)], 1)  # noqa: E731
    qk, value = grow(projected.astype(np.float64)), grow(value.astype(np.float64))
    valid = np.zeros((batch, padded), bool)
    valid[:, :seq_len] = True if key_mask is None else key_mask
    keys = qk / np.sqrt((qk**2).mean(-1, keepdims=True) + 1e-6) / np.sqrt(dim)
    rounds = 1 if plain else pattern.num_hashes
    buckets = None if plain else pattern.buckets(qk, rotations)  # (B, H, R, T)
    out = np.zeros((batch, padded, heads, value.shape[-1]))
    for b in range(batch):
        for h in range(heads):
            if plain:
                slots = np.arange(padded)  # one chunk, no neighbours
            else:
                bucket = np.where(valid[b], buckets[b, h], pattern.total_buckets)
                slots = np.concatenate([np.lexsort((np.arange(padded), bucket[r])) for r in range(rounds)])
            chunks = len(slots) // (chunk if not plain else padded)
            width = len(slots) // chunks
            outputs, lses = np.zeros((len(slots), value.shape[-1])), np.zeros(len(slots))
            for j in range(chunks):
                offsets = (
                    [0] if plain or chunks == 1 else range(-pattern.num_chunks_before, pattern.num_chunks_after + 1)
                )
                key_slots = np.concatenate(
                    [slots[((j + o) % chunks) * width : ((j + o) % chunks + 1) * width] for o in offsets]
                )
                query_slots = slots[j * width : (j + 1) * width]
                dots = qk[b, query_slots, h] @ keys[b, key_slots, h].T
                allowed = np.broadcast_to(valid[b, key_slots], dots.shape).copy()
                if causal:
                    allowed &= key_slots[None, :] <= query_slots[:, None]
                dots = np.where(allowed, dots, -1e9)
                dots = np.where(key_slots[None, :] == query_slots[:, None], -1e5, dots)
                lse = np.log(np.exp(dots - dots.max(-1, keepdims=True)).sum(-1)) + dots.max(-1)
                outputs[j * width : (j + 1) * width] = np.exp(dots - lse[:, None]) @ value[b, key_slots, h]
                lses[j * width : (j + 1) * width] = lse
            per_round = np.zeros((rounds, padded, value.shape[-1]))
            round_lse = np.zeros((rounds, padded))
            for r in range(rounds):
                per_round[r, slots[r * padded : (r + 1) * padded]] = outputs[r * padded : (r + 1) * padded]
                round_lse[r, slots[r * padded : (r + 1) * padded]] = lses[r * padded : (r + 1) * padded]
            weights = np.exp(round_lse - round_lse.max(0))
            weights /= weights.sum(0)
            out[b, :, h] = (per_round * weights[..., None]).sum(0)
    return out[:, :seq_len]


@pytest.mark.parametrize(
    "options, seq_len, masking",
    [
        ({"num_buckets": 4, "num_hashes": 2}, 64, "padding"),
        ({"num_buckets": 4, "num_hashes": 2}, 64, "causal"),
        ({"num_buckets": (2, 4), "num_hashes": 1}, 48, "none"),
        ({"num_buckets": 4, "num_hashes": 3, "num_chunks_before": 0, "num_chunks_after": 1}, 40, "padding"),
        ({"num_buckets": 2, "num_hashes": 2, "num_chunks_before": 1, "num_chunks_after": 1}, 32, "causal"),
        ({"num_buckets": 4, "num_hashes": 2}, 12, "padding"),  # at most one chunk: plain attention, no hashing
    ],
)
def test_trax_semantics_equal_the_transformers_restatement(options, seq_len, masking):
    pattern = ks.patterns.LSH(chunk_size=16, seed=5, semantics="trax", **options)
    x = np.random.default_rng(seq_len).normal(size=(2, seq_len, 12)).astype("float32")
    layer = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=6, use_bias=False, pattern=pattern)
    key_mask = None
    if masking == "padding":
        key_mask = np.ones((2, seq_len), bool)
        key_mask[1, seq_len // 2 :] = False
    out = np.asarray(layer(x, x, value_mask=key_mask, use_causal_mask=masking == "causal"))
    attention = trax_reference(
        layer.query_dense(x).numpy(),
        layer.value_dense(x).numpy(),
        layer.lsh_rotations.numpy(),
        pattern,
        key_mask,
        masking == "causal",
    )
    expected = layer.output_dense(attention.astype("float32")).numpy()
    live = np.ones((2, seq_len), bool) if key_mask is None else key_mask
    assert np.abs(out - expected)[live].max() / np.abs(expected).max() < RELATIVE_TOLERANCE


def test_rotations_are_a_weight_that_changes_the_hashes(tmp_path):
    import keras

    pattern = ks.patterns.LSH(num_buckets=4, num_hashes=2, chunk_size=8, semantics="trax")
    x = np.random.default_rng(0).normal(size=(1, 32, 8)).astype("float32")
    inputs = keras.Input((32, 8))
    layer = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=pattern)
    model = keras.Model(inputs, layer(inputs, inputs))
    np.testing.assert_array_equal(layer.lsh_rotations.numpy(), pattern.rotations(2, 4))
    before = model(x).numpy()
    layer.lsh_rotations.assign(np.random.default_rng(1).normal(size=layer.lsh_rotations.shape))
    after = model(x).numpy()
    assert np.abs(after - before).max() > 1e-3
    model.save(tmp_path / "lsh.keras")
    loaded = keras.saving.load_model(tmp_path / "lsh.keras")
    np.testing.assert_allclose(loaded(x), after, atol=1e-6)
