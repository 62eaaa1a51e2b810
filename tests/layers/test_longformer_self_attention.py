"""`LongformerSelfAttention` against Keras's own MultiHeadAttention, run twice with each row kind's attention mask."""

import keras
import numpy as np
import pytest

import keras_sparse as ks

RELATIVE_TOLERANCE = 1e-5


def keras_reference(layer, x, padding, global_mask):
    """Window rows: Keras MHA with the local projections and mask `band & real & not global | global`.
    Global rows: Keras MHA with the global projections and mask `real`. Padded rows: the output bias."""
    batch, seq_len, dim = x.shape
    positions = np.arange(seq_len)
    band = np.abs(positions[:, None] - positions[None, :]) <= layer.attention_window // 2
    is_global = global_mask & padding
    local_mask = (band[None] & padding[:, None, :] & ~is_global[:, None, :]) | is_global[:, None, :]
    query, key, value, output = (layer._query_dense, layer._key_dense, layer._value_dense, layer._output_dense)
    rows = []
    for projections, mask in (
        ((query, key, value), local_mask),
        (layer.global_projections, np.broadcast_to(padding[:, None, :], (batch, seq_len, seq_len))),
    ):
        mha = keras.layers.MultiHeadAttention(num_heads=layer.num_heads, key_dim=layer.key_dim)
        mha(x, x)
        mha.set_weights([w for p in (*projections, output) for w in p.get_weights()])
        rows.append(np.asarray(mha(x, x, attention_mask=mask)))
    expected = np.where(is_global[..., None], rows[1], rows[0])
    return np.where(padding[..., None], expected, output.bias.numpy())


def random_masks(rng, batch, seq_len, candidates):
    padding = np.ones((batch, seq_len), bool)
    padding[1, seq_len - 7 :] = False
    global_mask = np.zeros((batch, seq_len), bool)
    for row in range(batch):
        chosen = rng.choice(candidates, size=rng.integers(0, len(candidates) + 1), replace=False)
        global_mask[row, np.asarray(chosen, int)] = True
    return padding, global_mask


@pytest.mark.parametrize(
    "attention_window, global_tokens, seq_len, implementation",
    [
        (8, (0,), 40, "auto"),
        (6, (0, 5, 17), 37, "auto"),
        (6, (0, 5, 17), 37, "segment"),
        (16, (2, 3, 30), 33, "dense"),
        (4, (), 24, "auto"),
    ],
)
def test_layer_equals_keras_multi_head_attention_per_row(attention_window, global_tokens, seq_len, implementation):
    rng = np.random.default_rng(attention_window + seq_len)
    layer = ks.layers.LongformerSelfAttention(
        num_heads=2,
        key_dim=4,
        attention_window=attention_window,
        global_tokens=global_tokens,
        implementation=implementation,
    )
    x = rng.normal(size=(3, seq_len, 8)).astype("float32")
    padding, global_mask = random_masks(rng, 3, seq_len, list(global_tokens))
    global_mask[2, list(global_tokens)] = True  # every candidate global in one example
    layer(x)  # builds
    for projection in layer.global_projections:  # separate weights: the reference must see the difference
        projection.set_weights([w + rng.normal(scale=0.3, size=w.shape) for w in projection.get_weights()])
    out = np.asarray(layer(x, padding_mask=padding, global_attention_mask=global_mask))
    expected = keras_reference(layer, x, padding, global_mask)
    assert np.abs(out - expected).max() / np.abs(expected).max() < RELATIVE_TOLERANCE


def test_global_flags_outside_the_global_tokens_raise_naming_the_argument():
    layer = ks.layers.LongformerSelfAttention(num_heads=2, key_dim=4, attention_window=4, global_tokens=(0,))
    flags = np.zeros((1, 16), bool)
    flags[0, 5] = True
    with pytest.raises(ValueError, match=r"`global_attention_mask`.*positions \[5\]"):
        layer(np.zeros((1, 16, 8), "float32"), global_attention_mask=flags)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"attention_window": 5}, "attention_window"),
        ({"attention_window": 0}, "attention_window"),
        ({"global_tokens": (-1,)}, "global_tokens"),
        ({"global_tokens": 3}, "global_tokens"),
        ({"pattern": ks.patterns.Dense()}, "pattern"),
    ],
)
def test_invalid_arguments_name_themselves(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        ks.layers.LongformerSelfAttention(**{"num_heads": 2, "key_dim": 4, "attention_window": 4, **kwargs})


def test_global_tokens_past_the_sequence_raise_at_build():
    layer = ks.layers.LongformerSelfAttention(num_heads=2, key_dim=4, attention_window=4, global_tokens=(20,))
    with pytest.raises(ValueError, match="`global_tokens`"):
        layer(np.zeros((1, 16, 8), "float32"))


def test_an_unknown_sequence_length_names_the_shape_and_the_fix():
    layer = ks.layers.LongformerSelfAttention(num_heads=2, key_dim=4, attention_window=4)
    with pytest.raises(ValueError, match=r"`hidden_states`.*Fix: give the model a fixed length.*\(None, None, 8\)"):
        layer(keras.Input((None, 8)))


def test_config_round_trip_and_keras_file_without_custom_objects(tmp_path):
    hidden = keras.Input((24, 8))
    flags = keras.Input((24,), dtype="bool")
    layer = ks.layers.LongformerSelfAttention(num_heads=2, key_dim=4, attention_window=4, global_tokens=(0, 7))
    model = keras.Model([hidden, flags], layer(hidden, global_attention_mask=flags))
    copy = ks.layers.LongformerSelfAttention.from_config(layer.get_config())
    assert copy.get_config() == layer.get_config()
    x = np.random.default_rng(0).normal(size=(2, 24, 8)).astype("float32")
    given = np.zeros((2, 24), bool)
    given[1, 7] = True
    model.save(tmp_path / "longformer.keras")
    loaded = keras.saving.load_model(tmp_path / "longformer.keras")
    np.testing.assert_allclose(loaded([x, given]), model([x, given]), atol=1e-6)
    assert len(loaded.layers[-1].weights) == 14  # query, key, value, output and the three global projections


def test_attention_blocks_pruning_is_refused_clearly():
    layer = ks.layers.LongformerSelfAttention(num_heads=2, key_dim=4, attention_window=4)
    with pytest.raises(ValueError, match="cannot be replaced"):
        layer.set_pattern(ks.patterns.Dense())
