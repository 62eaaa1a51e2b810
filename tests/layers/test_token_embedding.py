import keras
import numpy as np

import keras_sparse as ks


def test_same_outputs_weights_mask_and_config_as_keras_embedding():
    ids = np.random.default_rng(0).integers(0, 20, size=(3, 7))
    ours = ks.layers.TokenEmbedding(20, 5, mask_zero=True)
    theirs = keras.layers.Embedding(20, 5, mask_zero=True)
    theirs(ids)
    ours(ids)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_array_equal(ours(ids), theirs(ids))
    np.testing.assert_array_equal(ours.compute_mask(ids), theirs.compute_mask(ids))
    assert ks.layers.TokenEmbedding.from_config(ours.get_config()).get_config() == ours.get_config()


def test_lookup_is_a_single_gather_without_select():
    import tensorflow as tf

    layer = ks.layers.TokenEmbedding(20, 5)
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec((1, 7), tf.int32)).graph
    kinds = {op.type for op in graph.get_operations()}
    assert "GatherV2" in kinds and not kinds & {"Select", "SelectV2", "Less"}
