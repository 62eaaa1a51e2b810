"""`ks.extend_positions`: a model built for L tokens runs at a longer length and equals itself on the first L.

The reference is the model it was given, run on the first L tokens: exact where no layer reaches past
them (a causal pattern, padding, or a local pattern whose reach over all layers stays inside).
"""

import keras
import numpy as np
import pytest

import keras_sparse as ks

from .models.test_classifier import small_classifier

TOLERANCE = 1e-5


def relative_error(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def longer_tokens(length, new_length, vocab=16, seed=0):
    """Token ids (1, new_length) (no padding id 0) and their first `length`."""
    tokens = np.random.default_rng(seed).integers(1, vocab, size=(1, new_length)).astype("int32")
    return tokens[:, :length], tokens


def table_of(model, name):
    return keras.ops.convert_to_numpy(model.get_layer(name).weights[0])


WINDOW = ks.patterns.SlidingWindow(window_size=17, block_size=16)
"""Two encoder layers of an 8-token reach: position 0 (the "cls" pooling) sees the first 16 tokens only."""


def classifier(seq_len, **kwargs):
    keras.utils.set_random_seed(0)
    return small_classifier(**{"seq_len": seq_len, "pattern": WINDOW, "dropout": 0.0, **kwargs})


def tiny_backbone(name, length, num_layers=2):
    """A keras-hub backbone (`keras_hub.models.<name>`) of random weights built for `length` positions."""
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = getattr(keras_hub.models, name)
    return backbone(
        vocabulary_size=16,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=length,
        dropout=0.0,
    )


LENGTH, NEW_LENGTH = 512, 4096
"""A model built for 512 tokens runs at 4096 (tiny widths keep dense attention at 4096 cheap)."""


def test_our_classifier_runs_longer_and_equals_itself_on_its_first_tokens():
    length, new_length = LENGTH, NEW_LENGTH
    model = classifier(length)
    longer = ks.extend_positions(model, new_length)
    assert longer.input_shape == (None, new_length) and type(longer) is type(model)
    table, new_table = table_of(model, "position_embedding"), table_of(longer, "position_embedding")
    np.testing.assert_array_equal(new_table, np.concatenate([table] * (new_length // length)))  # Longformer's copy
    short, long = longer_tokens(length, new_length)
    expected = model.predict(short, verbose=0)
    assert relative_error(longer.predict(long, verbose=0), expected) < TOLERANCE
    assert model.input_shape == (None, length)  # the original is unchanged


def test_sinusoidal_positions_are_recomputed_at_the_new_length():
    model = classifier(64, position="sinusoidal")
    longer = ks.extend_positions(model, np.int64(256))  # NumPy integers are integers
    short, long = longer_tokens(64, 256)
    assert relative_error(longer.predict(long, verbose=0), model.predict(short, verbose=0)) < TOLERANCE


def test_gpt2_backbone_runs_longer_and_equals_itself_on_its_first_tokens():
    length, new_length = LENGTH, NEW_LENGTH
    backbone = tiny_backbone("GPT2Backbone", length)
    longer = ks.extend_positions(backbone, new_length)
    assert type(longer) is type(backbone) and longer.max_sequence_length == new_length
    short, long = longer_tokens(length, new_length)
    run = lambda model, tokens: model({"token_ids": tokens, "padding_mask": np.ones_like(tokens)})  # noqa: E731
    # GPT-2 is causal: the first tokens' outputs never depend on later ones.
    assert relative_error(run(longer, long)[:, :length], run(backbone, short)) < TOLERANCE


def test_bert_backbone_runs_longer_and_equals_itself_on_its_first_tokens():
    length, new_length = LENGTH, NEW_LENGTH
    backbone = tiny_backbone("BertBackbone", length)
    longer = ks.extend_positions(backbone, new_length)
    assert type(longer) is type(backbone) and longer.max_sequence_length == new_length
    table = table_of(backbone, "position_embedding")
    np.testing.assert_array_equal(table_of(longer, "position_embedding")[length : 2 * length], table)
    short, long = longer_tokens(length, new_length)
    padding = (np.arange(new_length) < length)[None].astype("int32")  # later tokens are padding: keys masked
    inputs = {"token_ids": long, "segment_ids": np.zeros_like(long), "padding_mask": padding}
    expected = backbone({"token_ids": short, "segment_ids": np.zeros_like(short), "padding_mask": np.ones_like(short)})
    assert relative_error(longer(inputs)["sequence_output"][:, :length], expected["sequence_output"]) < TOLERANCE


def test_a_keras_hub_task_keeps_its_class_and_saves(tmp_path):
    import keras_hub

    backbone = tiny_backbone("GPT2Backbone", 32, num_layers=1)
    longer = ks.extend_positions(keras_hub.models.GPT2CausalLM(backbone, preprocessor=None), 128)
    assert type(longer) is keras_hub.models.GPT2CausalLM and longer.backbone.max_sequence_length == 128
    longer.save(tmp_path / "longer.keras")
    loaded = keras.models.load_model(tmp_path / "longer.keras")
    tokens = longer_tokens(32, 128)[1]
    inputs = {"token_ids": tokens, "padding_mask": np.ones_like(tokens)}
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), longer.predict(inputs, verbose=0))


def test_errors_name_the_argument_and_the_fix():
    model = classifier(64)
    with pytest.raises(ValueError, match=r"`new_length`, expected more than the 64 positions .* new_length=64"):
        ks.extend_positions(model, 64)
    with pytest.raises(ValueError, match=r"`new_length`, expected a positive integer. Received: new_length=512.0"):
        ks.extend_positions(model, 512.0)
    x = keras.Input((8, 4))
    with pytest.raises(ValueError, match="has no position layer"):
        ks.extend_positions(keras.Model(x, keras.layers.Dense(2)(x)), 16)
    with pytest.raises(ValueError, match="argument `model`, expected a functional keras.Model"):
        ks.extend_positions(keras.layers.Dense(2), 16)
    learned = classifier(64, pattern=ks.patterns.Learned(np.eye(4, dtype=bool), block_size=16))
    with pytest.raises(ValueError, match=r"cannot be rebuilt for 128 tokens: .*learned layout has 4 blocks"):
        ks.extend_positions(learned, 128)
    inner = classifier(64)
    tokens = keras.Input((64,), dtype="int32")
    with pytest.raises(ValueError, match="position layers are inside 'sparse_transformer_classifier'"):
        ks.extend_positions(keras.Model(tokens, inner(tokens)), 128)
