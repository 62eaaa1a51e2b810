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


def test_int8_export_of_a_masked_pattern_stays_accurate():
    """Full-integer export of a window (masked) model: measured 0.026 max relative error, 100% argmax agreement.

    With a -1e9 mask fill the same model gives 0.23 and 94%: the bound below guards the fill.
    """
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((SEQ_LEN, DIM))
    attention = ks.layers.SparseMultiHeadAttention(
        num_heads=4, key_dim=4, pattern=ks.patterns.SlidingWindow(24, global_tokens=(0,), block_size=16)
    )
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.LayerNormalization()(x + attention(x, x)))
    model = keras.Model(x, keras.layers.Dense(4)(pooled))
    rng = np.random.default_rng(0)
    calibration = rng.normal(size=(64, SEQ_LEN, DIM)).astype("float32")
    test = rng.normal(size=(32, SEQ_LEN, DIM)).astype("float32")
    concrete = tf.function(lambda t: model(t)).get_concrete_function(tf.TensorSpec((1, SEQ_LEN, DIM), tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[None]] for sample in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for sample in test:
        interpreter.set_tensor(inp["index"], sample[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"])[0])
    outputs, expected = np.stack(outputs), model.predict(test, verbose=0)
    assert np.abs(outputs - expected).max() / np.abs(expected).max() < 0.12
    assert (outputs.argmax(-1) == expected.argmax(-1)).mean() >= 0.95
