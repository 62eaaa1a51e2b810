"""Each structure removes exactly its units, to the requested sparsity, and never brings them back."""

import numpy as np
import pytest

import keras_sparse as ks
from keras_sparse.pruning.selection import keep_largest
from keras_sparse.pruning.structures import numpy

from .conftest import attention_model

ACCEPT_ALL = lambda layer: True  # noqa: E731


def head_norms(layer):
    """Per head: is any weight of the head's projections non-zero."""
    query, output = numpy(layer._query_dense.kernel), numpy(layer._output_dense.kernel)
    return np.abs(query).sum(axis=(0, 2)) > 0, np.abs(output).sum(axis=(1, 2)) > 0


@pytest.mark.parametrize("attention", ["sparse", "keras"])
@pytest.mark.parametrize("sparsity, kept", [(0.0, 4), (0.3, 3), (0.5, 2), (0.99, 1)])
def test_heads_removes_whole_heads(attention, sparsity, kept):
    model = attention_model(attention)
    structure = ks.pruning.Heads()
    (layer,) = structure.targets(model, ACCEPT_ALL)
    for variable in layer.weights:  # biases start at zero: make every weight visible
        variable.assign(numpy(variable) + 1.0)
    importance = structure.importance(layer)
    structure.prune(layer, sparsity)
    mask = structure.kept(layer)
    assert mask.sum() == kept
    np.testing.assert_array_equal(mask, keep_largest(importance, kept))  # the most important heads stay
    for alive in head_norms(layer):
        np.testing.assert_array_equal(alive, mask)
    for projection in ("_query_dense", "_key_dense", "_value_dense"):
        bias = numpy(getattr(layer, projection).bias)
        np.testing.assert_array_equal(np.abs(bias).sum(axis=1) > 0, mask)
    assert structure.sparsity(layer) == pytest.approx(1 - kept / 4)


def test_removed_heads_never_return():
    model = attention_model()
    structure = ks.pruning.Heads()
    (layer,) = structure.targets(model, ACCEPT_ALL)
    structure.prune(layer, 0.5)
    first = structure.kept(layer)
    layer._value_dense.kernel.assign(numpy(layer._value_dense.kernel) + 10.0)  # removed heads look important
    structure.prune(layer, 0.75)
    second = structure.kept(layer)
    assert second.sum() == 1 and not (second & ~first).any()


def test_neurons_removes_units_of_dense_pairs():
    model = attention_model()
    structure = ks.pruning.Neurons()
    pairs = structure.targets(model, ACCEPT_ALL)
    pairs[0][0].bias.assign(np.ones(32, "float32"))
    assert [(a.name, b.name) for a, b, _ in pairs] == [("hidden", "project")]  # "project" feeds pooling
    structure.prune(pairs[0], 0.25)
    kernel, bias = numpy(pairs[0][0].kernel), numpy(pairs[0][0].bias)
    alive = np.abs(kernel).sum(axis=0) > 0
    assert alive.sum() == 24
    np.testing.assert_array_equal(alive, structure.kept(pairs[0]))
    assert (bias[~alive] == 0).all()


@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (3, 8)])
def test_n_of_m_keeps_n_in_every_group_of_m_inputs(n, m):
    model = attention_model()
    structure = ks.pruning.NOfM(n, m)
    layer = model.get_layer("hidden")
    structure.prune(layer, 0.5)
    kernel = numpy(layer.kernel)  # (16 inputs, 32 outputs)
    nonzero = (kernel != 0).reshape(16 // m, m, 32).sum(axis=1)
    assert (nonzero == n).all()
    assert structure.sparsity(layer) == pytest.approx(1 - n / m)


def test_n_of_m_covers_attention_projections():
    model = attention_model()
    layer = model.get_layer("attention")
    ks.pruning.NOfM(2, 4).prune(layer, 0.5)
    for projection in ("_query_dense", "_value_dense"):
        kernel = numpy(getattr(layer, projection).kernel).reshape(16, -1)
        assert ((kernel != 0).reshape(4, 4, -1).sum(axis=1) == 2).all()
    output = numpy(layer._output_dense.kernel).reshape(16, -1)  # inputs: heads x value_dim
    assert ((output != 0).reshape(4, 4, -1).sum(axis=1) == 2).all()


@pytest.mark.parametrize("block_shape", [(1, 4), (4, 4), (2, 8)])
def test_blocks_removes_whole_blocks(block_shape):
    outputs, inputs = block_shape
    model = attention_model()
    layer = model.get_layer("hidden")
    ks.pruning.Blocks(block_shape).prune(layer, 0.5)
    blocks = numpy(layer.kernel).reshape(16 // inputs, inputs, 32 // outputs, outputs)
    alive = np.abs(blocks).sum(axis=(1, 3)) > 0
    assert alive.mean() == 0.5
    zero = (blocks == 0).all(axis=(1, 3))
    np.testing.assert_array_equal(zero, ~alive)  # blocks are all zero or untouched


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ks.pruning.NOfM(4, 4), "`n_m`"),
        (lambda: ks.pruning.Blocks((0, 4)), "`block_shape`"),
    ],
)
def test_bad_structure_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_shapes_a_structure_cannot_tile_are_refused_by_name():
    model = attention_model()
    with pytest.raises(ValueError, match="'hidden' has 16 inputs, not a multiple of m=32"):
        ks.pruning.NOfM(2, 32).check(model.get_layer("hidden"))
    with pytest.raises(ValueError, match="'hidden' has a 16 inputs x 32 outputs kernel"):
        ks.pruning.Blocks((3, 4)).check(model.get_layer("hidden"))
