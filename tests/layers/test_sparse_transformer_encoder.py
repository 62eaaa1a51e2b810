"""SparseTransformerEncoder against a hand-written composition of Keras layers with the pattern as mask."""

import keras
import numpy as np
import pytest

import keras_sparse as ks

SEQ_LEN, DIM = 48, 16
PATTERN = ks.patterns.BigBird(block_size=8, num_sliding_window_blocks=3, num_global_blocks=1, num_random_blocks=1)


def reference(encoder, x, padding_mask, normalize_first):
    """Keras's MultiHeadAttention, Dense and LayerNormalization with the encoder's weights, composed by hand."""
    attention = keras.layers.MultiHeadAttention(num_heads=encoder.num_heads, key_dim=DIM // encoder.num_heads)
    attention(x, x)
    attention.set_weights(encoder.self_attention.get_weights())
    norms = [keras.layers.LayerNormalization(epsilon=1e-5) for _ in range(2)]
    for norm, source in zip(norms, (encoder.attention_norm, encoder.feedforward_norm), strict=True):
        norm.build(x.shape)
        norm.set_weights(source.get_weights())
    w1, b1 = encoder.intermediate.get_weights()
    w2, b2 = encoder.output_dense.get_weights()
    mask = PATTERN.mask(SEQ_LEN)[None] & padding_mask[:, None, :]

    def feedforward(h):
        return np.maximum(h @ w1 + b1, 0) @ w2 + b2

    if normalize_first:
        h = x + np.asarray(attention(norms[0](x), norms[0](x), attention_mask=mask))
        return h + feedforward(np.asarray(norms[1](h)))
    h = np.asarray(norms[0](x + np.asarray(attention(x, x, attention_mask=mask))))
    return np.asarray(norms[1](h + feedforward(h)))


@pytest.mark.parametrize("normalize_first", [False, True])
def test_matches_reference_with_padding(normalize_first):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, SEQ_LEN, DIM)).astype("float32")
    padding_mask = np.arange(SEQ_LEN)[None] < np.array([[SEQ_LEN], [30], [9]])
    encoder = ks.layers.SparseTransformerEncoder(
        num_heads=4, intermediate_dim=32, pattern=PATTERN, normalize_first=normalize_first
    )
    actual = np.asarray(encoder(x, padding_mask=padding_mask))
    expected = reference(encoder, x, padding_mask, normalize_first)
    real = padding_mask  # outputs at padded queries are unspecified
    error = np.abs(actual - expected)[real].max() / np.abs(expected[real]).max()
    assert error < 1e-5


def test_keras_mask_is_the_padding_mask_and_flows_through():
    tokens = keras.Input((SEQ_LEN,), dtype="int32")
    x = keras.layers.Embedding(10, DIM, mask_zero=True)(tokens)
    encoder = ks.layers.SparseTransformerEncoder(num_heads=2, intermediate_dim=32, pattern=PATTERN)
    y = encoder(x)
    assert y._keras_mask is not None
    model = keras.Model(tokens, y)
    ids = np.random.default_rng(0).integers(1, 10, size=(1, SEQ_LEN))
    ids[:, 20:] = 0
    embedded = model.layers[1](ids)
    explicit = encoder(embedded, padding_mask=ids != 0)
    np.testing.assert_allclose(np.asarray(model(ids))[:, :20], np.asarray(explicit)[:, :20], rtol=1e-5, atol=1e-6)


def test_config_and_keras_file_round_trip(tmp_path):
    x = keras.Input((SEQ_LEN, DIM))
    model = keras.Model(x, ks.layers.SparseTransformerEncoder(2, 32, PATTERN, activation="gelu_tanh")(x))
    model.save(tmp_path / "encoder.keras")
    loaded = keras.models.load_model(tmp_path / "encoder.keras")
    data = np.random.default_rng(0).normal(size=(2, SEQ_LEN, DIM)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(data)), np.asarray(model(data)))
    layer = loaded.layers[1]
    assert layer.pattern == PATTERN and layer.activation is ks.layers.gelu_tanh


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ks.layers.SparseTransformerEncoder(0, 32), "`num_heads`"),
        (lambda: ks.layers.SparseTransformerEncoder(3, 32)(np.zeros((1, SEQ_LEN, DIM), "float32")), "num_heads=3"),
        (
            lambda: ks.layers.SparseTransformerEncoder(2, 32)(
                np.zeros((1, SEQ_LEN, DIM), "float32"), padding_mask=np.ones((1, 5), bool)
            ),
            "`padding_mask`",
        ),
    ],
)
def test_bad_input_is_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_gelu_tanh_is_close_to_gelu_and_exports_without_a_gelu_op():
    import tensorflow as tf

    x = np.linspace(-6, 6, 1001).astype("float32")
    assert (
        np.abs(np.asarray(ks.layers.gelu_tanh(x)) - np.asarray(keras.activations.gelu(x, approximate=False))).max()
        < 1e-3
    )
    inputs = keras.Input((8,), batch_size=1)
    model = keras.Model(inputs, keras.layers.Dense(8, activation=ks.layers.gelu_tanh)(inputs))
    concrete = tf.function(lambda v: model(v)).get_concrete_function(tf.TensorSpec((1, 8), tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=converter.convert())
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "GELU" not in ops and "TANH" in ops
