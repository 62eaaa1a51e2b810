"""Pruning reaches heads and units inside Transformer blocks (ours, keras-hub's) and nested models.

The reference for `finalize` is the masked model it was given (float32 relative error < 1e-5).
"""

import keras
import keras_hub
import numpy as np
import pytest

import keras_sparse as ks
from keras_sparse.pruning.structures import numpy

from .conftest import regression_model
from .test_finalize import relative_error, train_pruned

SEQ_LEN, DIM = 16, 16


def hub_blocks_model():
    """(B, 16, 16) -> keras-hub TransformerEncoder -> TransformerDecoder (self-attention only) -> pooled -> Dense."""
    keras.utils.set_random_seed(0)
    x = keras.Input((SEQ_LEN, DIM))
    h = keras_hub.layers.TransformerEncoder(32, num_heads=4, name="encoder")(x)
    return regression_model(x, keras_hub.layers.TransformerDecoder(32, num_heads=4, name="decoder")(h))


@pytest.fixture(scope="module")
def data():
    x = np.random.default_rng(0).normal(size=(64, SEQ_LEN, DIM)).astype("float32")
    return x, x[:, :, 0].mean(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def pruned_hub_blocks():
    """`hub_blocks_model` with heads and neurons pruned to 50% as `StructuredPruning` prunes at each step (a
    keras-hub task is pruned during `fit` below); shared, since `finalize` leaves it unchanged."""
    model = hub_blocks_model()
    for structure in (ks.pruning.Heads(), ks.pruning.Neurons()):
        for target in structure.targets(model, lambda layer: True):
            structure.prune(target, 0.5)
    return model


def alive_heads(attention) -> np.ndarray:
    """Per head: is any weight of its query, key, value or output projection non-zero."""
    kernels = [numpy(getattr(attention, f"_{name}_dense").kernel) for name in ("query", "key", "value")]
    alive = [np.abs(k).sum(axis=(0, 2)) > 0 for k in kernels]
    alive.append(np.abs(numpy(attention._output_dense.kernel)).sum(axis=(1, 2)) > 0)
    assert all((a == alive[0]).all() for a in alive)
    return alive[0]


def test_masks_have_their_structure_inside_keras_hub_blocks(pruned_hub_blocks):
    model = pruned_hub_blocks
    attention = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.MultiHeadAttention)]
    assert len(attention) == 2  # the encoder's and the decoder's self-attention
    for layer in attention:
        assert alive_heads(layer).sum() == 2
    for block in (model.get_layer("encoder"), model.get_layer("decoder")):
        kernel = numpy(block._feedforward_intermediate_dense.kernel)
        alive = np.abs(kernel).sum(axis=0) > 0
        assert alive.sum() == 16
        assert not numpy(block._feedforward_intermediate_dense.bias)[~alive].any()
    rows = {(row.layer, row.structure): row.sparsity for row in ks.pruning.pruning_rows(model)}
    assert rows[("decoder/feedforward_intermediate_dense", "neurons")] == 0.5
    assert sum(structure == "heads" for _, structure in rows) == 2
    assert "encoder/self_attention_layer" in ks.pruning.report(model)


def test_finalize_shrinks_keras_hub_blocks_and_names_their_heads(pruned_hub_blocks, data):
    model = pruned_hub_blocks
    with pytest.warns(UserWarning, match=r"self_attention_layer: keras-hub's TransformerEncoder derives key_dim"):
        small = ks.pruning.finalize(model)
    assert relative_error(small.predict(data[0], verbose=0), model.predict(data[0], verbose=0)) < 1e-5
    for name in ("encoder", "decoder"):
        assert small.get_layer(name).intermediate_dim == 16
        assert type(small.get_layer(name)) is type(model.get_layer(name))
    assert small.count_params() < model.count_params()


def nested_model():
    """An outer functional model holding a functional model (attention, Dense pair) and a Sequential pair."""
    keras.utils.set_random_seed(0)
    inner_x = keras.Input((SEQ_LEN, DIM))
    attention = ks.layers.SparseMultiHeadAttention(
        num_heads=4, key_dim=4, pattern=ks.patterns.SlidingWindow(9, block_size=8), name="attention"
    )(inner_x, inner_x)
    h = keras.layers.Dense(8, name="project")(keras.layers.Dense(32, activation="relu", name="hidden")(attention))
    inner = keras.Model(inner_x, h, name="inner")
    feedforward = keras.Sequential(
        [keras.layers.Dense(24, activation="relu", name="up"), keras.layers.Dense(8, name="down")], name="feedforward"
    )
    x = keras.Input((SEQ_LEN, DIM))
    return regression_model(x, feedforward(inner(x)))


def test_finalize_shrinks_inside_nested_functional_and_sequential_models(data):
    model = train_pruned(nested_model(), data, ["heads", "neurons"])
    structures = {row.layer.split("/")[-1]: row.structure for row in ks.pruning.pruning_rows(model)}
    assert structures == {"attention": "heads", "hidden": "neurons", "up": "neurons"}
    small = ks.pruning.finalize(model)
    assert relative_error(small.predict(data[0], verbose=0), model.predict(data[0], verbose=0)) < 1e-5
    inner, feedforward = small.get_layer("inner"), small.get_layer("feedforward")
    assert isinstance(feedforward, keras.Sequential)
    assert inner.get_layer("attention").num_heads == 2
    assert (inner.get_layer("hidden").units, feedforward.get_layer("up").units) == (16, 12)
    assert small.count_params() < model.count_params()


def test_finalize_shrinks_heads_and_units_of_our_encoder(data):
    keras.utils.set_random_seed(0)
    x = keras.Input((SEQ_LEN, DIM))
    h = ks.layers.SparseTransformerEncoder(
        num_heads=4, intermediate_dim=32, pattern=ks.patterns.SlidingWindow(9, block_size=8), name="encoder"
    )(x)
    model = train_pruned(regression_model(x, h), data, ["heads", "neurons", "attention_blocks"])
    small = ks.pruning.finalize(model)
    assert relative_error(small.predict(data[0], verbose=0), model.predict(data[0], verbose=0)) < 1e-5
    encoder = small.get_layer("encoder")
    assert (encoder.num_heads, encoder.intermediate_dim, encoder.self_attention.num_heads) == (2, 16, 2)
    assert not encoder.get_config()["sublayer_constraints"]  # no pruning mask is carried on


def tiny_bert_classifier():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=32, num_layers=2, num_heads=4, hidden_dim=16, intermediate_dim=32, max_sequence_length=16
    )
    classifier = keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    classifier.compile(keras.optimizers.Adam(0.01), loss, jit_compile=False)  # XLA compiles for longer than it trains
    return classifier


def bert_data(count=64):
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 32, size=(count, SEQ_LEN)).astype("int32")
    padding = np.ones((count, SEQ_LEN), "int32")
    padding[: count // 2, 12:] = 0
    inputs = {"token_ids": tokens, "segment_ids": np.zeros_like(tokens), "padding_mask": padding}
    return inputs, (tokens[:, 0] % 2).astype("int32")


def test_finalize_rebuilds_a_keras_hub_task_from_its_arguments_with_fewer_units():
    classifier = train_pruned(tiny_bert_classifier(), bert_data(), ["heads", "neurons"])
    assert {row.structure for row in ks.pruning.pruning_rows(classifier)} == {"heads", "neurons"}
    with pytest.warns(UserWarning, match=r"transformer_layer_1/self_attention_layer: .*fewer heads"):
        small = ks.pruning.finalize(classifier)
    assert type(small) is keras_hub.models.BertTextClassifier
    assert small.backbone.intermediate_dim == 16
    assert [layer.intermediate_dim for layer in small.backbone.transformer_layers] == [16, 16]
    inputs = bert_data(8)[0]
    assert relative_error(small.predict(inputs, verbose=0), classifier.predict(inputs, verbose=0)) < 1e-5
    assert small.count_params() < classifier.count_params()


def test_finalize_names_keras_hub_blocks_that_kept_different_widths():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=32, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=16
    )
    neurons = ks.pruning.Neurons()
    for count, pair in zip((8, 16), neurons.targets(backbone, lambda layer: True), strict=True):
        neurons.set_kept(pair, np.arange(32) < count)
    with pytest.warns(UserWarning, match=r"one intermediate_dim, and its blocks kept \[8, 16\] units"):
        same_size = ks.pruning.finalize(backbone)
    assert type(same_size) is keras_hub.models.GPT2Backbone and same_size.intermediate_dim == 32
    inputs = {"token_ids": bert_data(4)[0]["token_ids"], "padding_mask": np.ones((4, SEQ_LEN), "int32")}
    assert relative_error(same_size.predict(inputs, verbose=0), backbone.predict(inputs, verbose=0)) < 1e-5

    neurons.set_kept(neurons.targets(backbone, lambda layer: True)[1], np.arange(32) < 8)
    small = ks.pruning.finalize(backbone)
    assert small.intermediate_dim == 8
    assert relative_error(small.predict(inputs, verbose=0), backbone.predict(inputs, verbose=0)) < 1e-5


class CustomBlock(keras.layers.Layer):
    """A layer holding a feed-forward pair, listed for pruning with `prunable_neuron_pairs()`."""

    def build(self, input_shape):
        self.up = keras.layers.Dense(8, activation="relu")
        self.up.build(input_shape)
        self.down = keras.layers.Dense(input_shape[-1])
        self.down.build((*input_shape[:-1], 8))

    def call(self, x):
        return self.down(self.up(x))

    def prunable_neuron_pairs(self):
        return [(self.up, self.down)]


def test_custom_layers_are_pruned_and_named_by_finalize():
    keras.utils.set_random_seed(0)
    x = keras.Input((4,))
    model = keras.Model(x, CustomBlock(name="block")(x))
    neurons = ks.pruning.Neurons()
    (pair,) = neurons.targets(model, lambda layer: layer.name == "block")  # the block itself is accepted
    neurons.set_kept(pair, np.arange(8) < 4)
    with pytest.warns(UserWarning, match="cannot rebuild CustomBlock 'block' smaller"):
        ks.pruning.finalize(model)


def test_report_rows_name_each_nested_layer_by_its_own_path():
    """Two nested models each holding a layer named "hidden": Keras's `layer.path` is "hidden" for both."""

    def block(name):
        x = keras.Input((SEQ_LEN, DIM))
        hidden = keras.layers.Dense(32, activation="relu", name="hidden")(x)
        return keras.Model(x, keras.layers.Dense(DIM, name="project")(hidden), name=name)

    x = keras.Input((SEQ_LEN, DIM))
    model = regression_model(x, block("second")(block("first")(x)))
    structure = ks.pruning.Neurons()
    for target in structure.targets(model, lambda layer: True):
        structure.prune(target, 0.5)
    paths = [row.layer for row in ks.pruning.pruning_rows(model)]
    assert sorted(paths) == ["first/hidden", "second/hidden"]
