"""The export rewrites reach layers at any depth and keep the numbers."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_sparse as ks
from tests.reference import RELATIVE_TOLERANCE, relative_error
from tests.rewrites.hub_models import backbone, inputs, live_rows

PATTERN = ks.patterns.SlidingWindow(16, global_tokens=(0,), block_size=8)


def sparse_layers(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, ks.layers.SparseMultiHeadAttention)]


def classifier(implementation="auto"):
    keras.utils.set_random_seed(0)
    return ks.models.SparseTransformerClassifier(
        12,
        96,
        num_layers=1,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        pattern=PATTERN,
        num_classes=3,
        implementation=implementation,
    )


def tokens():
    data = np.random.default_rng(0).integers(2, 12, size=(3, 96)).astype("int32")
    data[0, 60:] = 0  # padding
    return data


def builtins_only(model) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def run_tflite(flatbuffer: bytes, data: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], data.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], data)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_exportable_makes_a_tf_sparse_classifier_convertible_with_the_same_numbers():
    """The encoders' tf.sparse kernel has no TFLite kernel (the converter's error says to call exportable)."""
    model = classifier(implementation="sparse")
    with pytest.raises(Exception, match="SparseSoftmax|SparseTensorDenseMatMul"):
        builtins_only(model)
    export_model = ks.exportable(model)
    assert [layer.implementation for layer in sparse_layers(export_model)] == ["segment"]
    assert export_model.get_layer("encoder_0").implementation == "segment"
    assert [layer.implementation for layer in sparse_layers(model)] == ["sparse"]  # the original is unchanged
    data = tokens()
    output = run_tflite(builtins_only(export_model), data)
    assert relative_error(output, model(data), np.ones(3, bool)) < RELATIVE_TOLERANCE


def test_with_max_query_blocks_reaches_encoders_and_keeps_outputs_and_the_original():
    model = classifier()
    copy = ks.rewrites.with_max_query_blocks(model, 2)
    assert sparse_layers(copy) and all(layer.max_query_blocks == 2 for layer in sparse_layers(copy))
    assert all(layer.max_query_blocks is None for layer in sparse_layers(model))
    data = tokens()
    assert relative_error(np.asarray(copy(data)), np.asarray(model(data)), np.ones(3, bool)) < RELATIVE_TOLERANCE


def test_max_query_blocks_is_checked_and_saved():
    with pytest.raises(ValueError, match="max_query_blocks"):
        ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=PATTERN, max_query_blocks=0)
    with pytest.raises(ValueError, match="max_query_blocks"):  # even where no layer would check it
        ks.rewrites.with_max_query_blocks(classifier(), 2.5)
    layer = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=PATTERN, max_query_blocks=3)
    assert ks.layers.SparseMultiHeadAttention.from_config(layer.get_config()).max_query_blocks == 3


def test_with_blockwise_softmax_reaches_encoders_and_keeps_outputs_and_the_original():
    model = classifier()
    copy = ks.rewrites.with_blockwise_softmax(model)
    assert sparse_layers(copy) and all(layer.blockwise_softmax for layer in sparse_layers(copy))
    assert not any(layer.blockwise_softmax for layer in sparse_layers(model))
    data = tokens()
    assert relative_error(np.asarray(copy(data)), np.asarray(model(data)), np.ones(3, bool)) < RELATIVE_TOLERANCE


def test_export_rewrites_reach_a_sparse_keras_hub_backbone_and_keep_its_class(tmp_path):
    sparse = ks.sparsify(backbone("Bert"), PATTERN, implementation="sparse")
    data = inputs(sparse)
    expected = np.asarray(sparse(data)["sequence_output"])
    copy = ks.rewrites.with_blockwise_softmax(ks.exportable(sparse))
    assert type(copy) is type(sparse)
    settings = [("segment", True)] * 2
    assert [(layer.implementation, layer.blockwise_softmax) for layer in sparse_layers(copy)] == settings
    assert relative_error(copy(data)["sequence_output"], expected, live_rows(data)) < RELATIVE_TOLERANCE
    copy.save(tmp_path / "copy.keras")
    loaded = keras.saving.load_model(tmp_path / "copy.keras")
    assert [(layer.implementation, layer.blockwise_softmax) for layer in sparse_layers(loaded)] == [
        ("segment", True)
    ] * 2


def test_centered_layer_norms_reach_every_norm_of_a_keras_hub_backbone():
    """Its embedding norm is a node of the backbone's functional graph; its encoders' norms are attributes."""
    original = backbone("Bert")
    copy = ks.centered_layer_norms(original)
    norms = [layer for layer in copy._flatten_layers() if isinstance(layer, keras.layers.LayerNormalization)]
    assert len(norms) == 5 and all(isinstance(layer, ks.layers.CenteredLayerNormalization) for layer in norms)
    assert copy.embeddings_layer_norm in copy.layers and isinstance(copy, type(original))
    data = inputs(original)
    expected = np.asarray(original(data)["sequence_output"])
    assert relative_error(copy(data)["sequence_output"], expected, live_rows(data)) < RELATIVE_TOLERANCE
