import keras
import numpy as np
import pytest

import keras_sparse as ks
from tests.reference import RELATIVE_TOLERANCE, relative_error

PATTERN = ks.patterns.SlidingWindow(16, global_tokens=(0,), block_size=8)


def attention_layers(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, ks.layers.SparseMultiHeadAttention)]


def dense_model():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((64,), dtype="int32")
    x = keras.layers.Embedding(20, 16)(tokens)
    x = keras.layers.LayerNormalization()(x + keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x))
    x = keras.layers.MultiHeadAttention(num_heads=4, key_dim=4, value_dim=6)(x, x, use_causal_mask=True)
    return keras.Model(tokens, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x)))


def test_sparsify_replaces_every_attention_layer_and_keeps_the_weights():
    model = dense_model()
    sparse = ks.sparsify(model, pattern=PATTERN)
    kinds = [type(layer).__name__ for layer in sparse.layers]
    assert kinds.count("SparseMultiHeadAttention") == 2 and "MultiHeadAttention" not in kinds
    for old, new in zip(model.weights, sparse.weights, strict=True):
        np.testing.assert_array_equal(old.numpy(), new.numpy())
    assert all(type(layer) is not ks.layers.SparseMultiHeadAttention for layer in model.layers)


def test_sparsified_model_equals_dense_model_with_pattern_masks():
    """With a Dense pattern the copy must compute exactly what the original computes."""
    model = dense_model()
    tokens = np.random.default_rng(0).integers(0, 20, size=(3, 64))
    expected = model(tokens)
    for implementation in ("blocked", "sparse"):
        sparse = ks.sparsify(model, pattern=ks.patterns.Dense(block_size=16), implementation=implementation)
        assert relative_error(sparse(tokens), expected, np.ones(3, bool)) < RELATIVE_TOLERANCE


def test_sparsify_raises_on_a_model_without_attention():
    model = keras.Sequential([keras.Input((32, 8)), keras.layers.Dense(8)])
    with pytest.raises(ValueError, match="no attention layer"):
        ks.sparsify(model, PATTERN)


def test_sparsify_rejects_subclassed_models_and_bad_patterns():
    class Custom(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="`model`"):
        ks.sparsify(Custom(), PATTERN)
    with pytest.raises(ValueError, match="`model`"):  # what to_micro(max_query_blocks=...) says of one
        ks.rewrites.with_max_query_blocks(Custom(), 2)
    with pytest.raises(ValueError, match="`pattern`"):
        ks.sparsify(dense_model(), "sliding")


def test_exportable_swaps_the_tf_sparse_kernel_and_the_copy_converts_and_matches():
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    x = keras.Input((48, 8), batch_size=1)
    attention = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=PATTERN, implementation="sparse")
    model = keras.Model(x, attention(x, x))
    export_model = ks.exportable(model)
    assert export_model.layers[1].implementation == "segment" and model.layers[1].implementation == "sparse"
    converter = tf.lite.TFLiteConverter.from_keras_model(export_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    data = np.random.default_rng(0).normal(size=(1, 48, 8)).astype("float32")
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], data)
    interpreter.invoke()
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert relative_error(output, model(data), np.ones(1, bool)) < RELATIVE_TOLERANCE


def test_with_max_query_blocks_reaches_encoders_and_keeps_outputs_and_the_original():
    keras.utils.set_random_seed(0)
    model = ks.models.SparseTransformerClassifier(
        12, 96, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, pattern=PATTERN, num_classes=3
    )
    copy = ks.rewrites.with_max_query_blocks(model, 2)
    assert attention_layers(copy) and all(layer.max_query_blocks == 2 for layer in attention_layers(copy))
    assert all(layer.max_query_blocks is None for layer in attention_layers(model))
    tokens = np.random.default_rng(0).integers(2, 12, size=(3, 96)).astype("int32")
    tokens[0, 60:] = 0  # padding
    expected = np.asarray(model(tokens))
    assert relative_error(np.asarray(copy(tokens)), expected, np.ones(3, bool)) < RELATIVE_TOLERANCE


def test_max_query_blocks_is_checked_and_saved():
    with pytest.raises(ValueError, match="max_query_blocks"):
        ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=PATTERN, max_query_blocks=0)
    with pytest.raises(ValueError, match="max_query_blocks"):  # even where no layer would check it
        ks.rewrites.with_max_query_blocks(dense_model(), 2.5)
    layer = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=PATTERN, max_query_blocks=3)
    assert ks.layers.SparseMultiHeadAttention.from_config(layer.get_config()).max_query_blocks == 3


def test_with_blockwise_softmax_reaches_encoders_and_keeps_outputs_and_the_original():
    keras.utils.set_random_seed(0)
    model = ks.models.SparseTransformerClassifier(
        12, 96, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, pattern=PATTERN, num_classes=3
    )
    copy = ks.rewrites.with_blockwise_softmax(model)
    assert attention_layers(copy) and all(layer.blockwise_softmax for layer in attention_layers(copy))
    assert not any(layer.blockwise_softmax for layer in attention_layers(model))
    tokens = np.random.default_rng(0).integers(2, 12, size=(3, 96)).astype("int32")
    tokens[0, 60:] = 0  # padding
    assert relative_error(np.asarray(copy(tokens)), np.asarray(model(tokens)), np.ones(3, bool)) < RELATIVE_TOLERANCE
