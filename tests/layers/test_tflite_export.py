"""The blocked and segment kernels convert with TFLITE_BUILTINS only and match Keras in LiteRT."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_sparse as ks

SEQ_LEN, DIM = 96, 16


def model_with(pattern, implementation):
    x = keras.Input((SEQ_LEN, DIM), batch_size=1)
    attention = ks.layers.SparseMultiHeadAttention(
        num_heads=2, key_dim=8, pattern=pattern, implementation=implementation
    )
    return keras.Model(x, attention(x, x, use_causal_mask=False))


def builtins_only(model):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


@pytest.mark.parametrize(
    "pattern, implementation",
    [
        (ks.patterns.BigBird(16, seed=1), "blocked"),
        (ks.patterns.SlidingWindow(20, global_tokens=(0,), block_size=16), "blocked"),
        (ks.patterns.SlidingWindow(20, dilation=3), "segment"),
        (ks.patterns.Strided(8, heads="split", block_size=16), "blocked"),
        (ks.patterns.DistanceDecay(0.2, per_head=True, block_size=16), "blocked"),
        (ks.patterns.RandomKeys(8, local_window=8), "segment"),
        (ks.patterns.Fixed(16, 4), "blocked"),
        (ks.patterns.LSH(4, num_hashes=2, chunk_size=16), "auto"),
    ],
    ids=[
        "big_bird-blocked",
        "window-blocked",
        "dilated-segment",
        "split-heads",
        "alibi",
        "random-keys",
        "fixed",
        "lsh",
    ],
)
def test_converts_to_builtins_and_matches_keras_in_litert(pattern, implementation):
    model = model_with(pattern, implementation)
    interpreter = Interpreter(model_content=builtins_only(model))
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(name.startswith("Flex") or name == "CUSTOM" for name in ops), ops
    data = np.random.default_rng(0).normal(size=(1, SEQ_LEN, DIM)).astype("float32")
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], data)
    interpreter.invoke()
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = model(data).numpy()
    assert np.abs(output - expected).max() / np.abs(expected).max() < 1e-5


def test_tf_sparse_kernel_cannot_be_converted_to_builtins():
    """Why the segment kernel exists: SparseSoftmax has no builtin."""
    with pytest.raises(Exception, match="SparseSoftmax|SparseTensorDenseMatMul|not supported"):
        builtins_only(model_with(ks.patterns.SlidingWindow(20), "sparse"))
