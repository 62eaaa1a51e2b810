"""`ks.summary`: one row per attention layer at any depth, its density against the mask Keras would use."""

import keras
import numpy as np
import pytest

import keras_sparse as ks

SEQ_LEN, DIM = 128, 16


def mixed_model():
    """Ours (window), Keras's (dense and with a sliding_window band), an encoder, and a nested model (BigBird)."""
    x = keras.Input((SEQ_LEN, DIM))
    window = ks.patterns.SlidingWindow(window_size=32, global_tokens=(0,))
    h = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=8, pattern=window, name="local")(x, x)
    h = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="full")(h, h)
    h = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, sliding_window=9, name="band")(h, h)
    h = ks.layers.SparseTransformerEncoder(
        num_heads=2, intermediate_dim=32, pattern=ks.patterns.BlockLocal(block_size=16), name="encoder"
    )(h)
    inner_x = keras.Input((SEQ_LEN, DIM))
    big_bird = ks.patterns.BigBird(block_size=16, num_global_blocks=1, num_random_blocks=1)
    attention = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=8, pattern=big_bird, name="big_bird")
    inner = keras.Model(inner_x, attention(inner_x, inner_x), name="inner")
    return keras.Model(x, inner(h), name="mixed")


def test_one_row_per_attention_layer_at_any_depth_with_the_masks_density():
    model = mixed_model()
    rows = {row.layer.split("/")[-1]: row for row in ks.summary(model).rows}
    assert list(rows) == ["local", "full", "band", "self_attention", "big_bird"]
    band = model.get_layer("band")
    keras_band = keras.ops.convert_to_numpy(band._compute_sliding_window_mask(np.zeros((1, SEQ_LEN, DIM))))
    masks = {  # the masks Keras's layer would be given (or, for "band", builds itself)
        "local": ks.patterns.SlidingWindow(window_size=32, global_tokens=(0,)).mask(SEQ_LEN),
        "full": np.ones((SEQ_LEN, SEQ_LEN), bool),
        "band": keras_band[0],
        "self_attention": ks.patterns.BlockLocal(block_size=16).mask(SEQ_LEN),
        "big_bird": ks.patterns.BigBird(block_size=16, num_global_blocks=1, num_random_blocks=1).mask(SEQ_LEN),
    }
    for name, row in rows.items():
        assert row.seq_len == SEQ_LEN
        assert row.density == pytest.approx(masks[name].mean(), rel=1e-12), name
        computes_all = name in ("full", "band")
        assert row.flop_ratio == pytest.approx(1.0 if computes_all else 1.0 / masks[name].mean(), rel=1e-12)
        assert row.sparse is not computes_all
        assert row.kernel == ("dense" if computes_all else "blocked")
    assert rows["band"].pattern == "Dense(), sliding_window=9"
    assert rows["self_attention"].layer == "encoder/self_attention"
    assert rows["local"].pattern == "SlidingWindow(window_size=32, global_tokens=(0,))"


def test_printed_table_has_a_line_per_layer_and_a_verdict():
    text = str(ks.summary(mixed_model()))
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "attention", "pattern", "kernel", "seq_len", "density", "FLOPs", "dense/this"]
    assert len(lines) == 7
    assert lines[-1] == "mixed: 3 of 5 attention layers sparse"
    assert repr(ks.summary(mixed_model())) == text


def test_dense_kernel_lsh_and_unbuilt_layers():
    x = keras.Input((SEQ_LEN, DIM))
    dense_kernel = ks.layers.SparseMultiHeadAttention(
        num_heads=2, key_dim=8, pattern=ks.patterns.SlidingWindow(16), implementation="dense", name="masked"
    )
    lsh = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=8, pattern=ks.patterns.LSH(num_buckets=4), name="lsh")
    model = keras.Model(x, lsh(dense_kernel(x, x), dense_kernel(x, x)))
    masked, hashed = ks.summary(model).rows
    assert (masked.kernel, masked.flop_ratio, masked.sparse) == ("dense", 1.0, False)  # it computes every score
    assert masked.density == pytest.approx(ks.patterns.SlidingWindow(16).mask(SEQ_LEN).mean())
    assert (hashed.kernel, hashed.density, hashed.flop_ratio) == ("lsh", None, None)
    assert "input-dependent" in str(ks.summary(model))
    unbuilt = ks.summary(keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)).rows[0]
    assert (unbuilt.seq_len, unbuilt.density) == (None, None)


def test_keras_hub_attention_is_listed_and_described_at_a_given_length():
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=32, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=64
    )
    rows = ks.summary(backbone).rows
    assert [row.attention for row in rows] == ["CachedMultiHeadAttention"] * 2
    assert [row.layer for row in rows] == [f"transformer_layer_{i}/self_attention" for i in range(2)]
    assert rows[0].seq_len is None and "any" in str(ks.summary(backbone))  # keras-hub takes (batch, None) tokens
    described = ks.summary(backbone, seq_len=4096).rows[0]
    assert (described.seq_len, described.density, described.flop_ratio) == (4096, 1.0, 1.0)


def test_a_model_without_attention_and_bad_arguments():
    x = keras.Input((4,))
    assert str(ks.summary(keras.Model(x, keras.layers.Dense(2)(x), name="mlp"))) == "mlp: no attention layers"
    with pytest.raises(ValueError, match="argument `model`, expected a Keras model or layer"):
        ks.summary("model")
    with pytest.raises(ValueError, match="`seq_len`, expected None or a positive integer. Received: seq_len=0"):
        ks.summary(mixed_model(), seq_len=0)
    assert str(ks.summary(mixed_model(), seq_len=np.int64(64))) == str(ks.summary(mixed_model(), seq_len=64))


@pytest.mark.parametrize("name", ["Bert", "GPT2", "Bart"])
def test_sparsified_keras_hub_rows_have_unique_paths_that_survive_saving(name, tmp_path):
    from tests.rewrites import hub_models

    sparse = ks.sparsify(hub_models.backbone(name), ks.patterns.SlidingWindow(window_size=8))
    paths = [row.layer for row in ks.summary(sparse).rows]
    layers = {"Bert": ["transformer_layer_{}/self_attention_layer"], "GPT2": ["transformer_layer_{}/self_attention"]}
    expected = [p.format(i) for i in range(2) for p in layers.get(name, [])] or [
        *(f"transformer_encoder_layer_{i}/self_attention_layer" for i in range(2)),
        *(f"transformer_decoder_layer_{i}/{a}" for i in range(2) for a in ("self_attention", "cross_attention")),
    ]
    assert paths == expected
    sparse.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert [row.layer for row in ks.summary(loaded).rows] == paths
