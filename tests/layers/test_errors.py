"""Bad input gets a ValueError naming the argument and the fix."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks

PATTERN = ks.patterns.SlidingWindow(8, global_tokens=(30,))


def layer(**kwargs):
    return ks.layers.SparseMultiHeadAttention(**{"num_heads": 2, "key_dim": 4, "pattern": PATTERN, **kwargs})


def x(*shape):
    return np.zeros(shape, "float32")


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: layer(pattern="window"), "pattern"),
        (lambda: layer(pattern=np.ones((4, 4), bool)), "pattern"),
        (lambda: layer(implementation="fast"), "implementation"),
        (lambda: layer(attention_axes=(1, 2)), "attention_axes"),
        (lambda: ks.layers.SparseMultiHeadAttention(num_heads=0, key_dim=4), "num_heads"),
    ],
)
def test_constructor_errors(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda attention: attention(x(2, 40), x(2, 40)), "query"),
        (lambda attention: attention(x(2, 40, 6, 1), x(2, 40, 6, 1)), "query"),
        (lambda attention: attention(x(2, 40, 6), x(2, 41, 6), x(2, 40, 6)), "key"),
        (
            lambda attention: attention(x(2, 40, 6), x(2, 40, 6), attention_mask=np.ones((2, 40, 39), bool)),
            "attention_mask",
        ),
        (lambda attention: attention(x(2, 40, 6), x(2, 40, 6), attention_mask=np.ones((40,), bool)), "attention_mask"),
        (lambda attention: attention(x(2, 20, 6), x(2, 20, 6)), "seq_len"),
    ],
)
def test_call_errors(call, argument):
    with pytest.raises(ValueError, match=f"`{argument}`") as error:
        call(layer())
    assert "Traceback" not in str(error.value)


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: ks.layers.SparseTransformerEncoder(2, 16, pattern=PATTERN), "inputs"),
        (lambda: ks.layers.LongformerSelfAttention(2, 4, attention_window=8), "hidden_states"),
        (lambda: ks.layers.PositionEmbedding(40), "inputs"),
        (lambda: ks.layers.AxialPositionEmbedding((5, 8), (4, 4)), "inputs"),
    ],
    ids=["encoder", "longformer", "position", "axial"],
)
def test_a_sequence_without_its_batch_axis_names_the_layer_s_own_argument(make, argument):
    with pytest.raises(
        ValueError, match=rf"argument `{argument}`, expected a rank-3.*Received: {argument}.shape=\(40, 8\)"
    ):
        make()(x(40, 8))  # was an inner layer's `query`, or TensorFlow's BroadcastTo error


def test_unknown_sequence_length_names_the_fix():
    attention = layer(pattern=ks.patterns.SlidingWindow(8))
    traced = tf.function(lambda q: attention(q, q), input_signature=[tf.TensorSpec((None, None, 6), tf.float32)])
    with pytest.raises(ValueError, match="static sequence length.*keras.Input"):
        traced(x(1, 40, 6))


def test_predict_at_a_second_length_names_what_happened_and_resetting_the_predict_function_works():
    inputs = keras.Input((None, 6))
    model = keras.Model(
        inputs, layer(pattern=ks.patterns.BigBird(16, num_global_blocks=1, num_random_blocks=1))(inputs, inputs)
    )
    rng = np.random.default_rng(0)
    short, long = (rng.normal(size=(2, length, 6)).astype("float32") for length in (64, 96))
    model.predict(short, verbose=0)
    with pytest.raises(ValueError, match="reduce_retracing=True.*`model.predict_function = None`"):
        model.predict(long, verbose=0)
    model.predict_function = None  # the fix the message names: a new traced function, at the new length
    np.testing.assert_array_equal(model.predict(long, verbose=0), model(long))


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: ks.layers.SparseMultiHeadAttention(num_heads=True, key_dim=4), "num_heads"),
        (lambda: layer(use_bias="no"), "use_bias"),
        (lambda: layer(dropout=1.0), "dropout"),
        (lambda: layer(dropout=float("nan")), "dropout"),
        (lambda: layer(blockwise_softmax="yes"), "blockwise_softmax"),
        (lambda: layer(max_query_blocks=0), "max_query_blocks"),
        (lambda: ks.layers.SparseTransformerEncoder(2, 8, normalize_first="no"), "normalize_first"),
        (lambda: ks.layers.SparseTransformerEncoder(2, 8, layer_norm_epsilon=0.0), "layer_norm_epsilon"),
        (lambda: ks.layers.SparseTransformerEncoder(2, 8, dropout=-0.1), "dropout"),
        (lambda: ks.layers.SparseTransformerEncoder(2, 8, implementation="fast"), "implementation"),
        (lambda: ks.layers.SparseTransformerEncoder(2, 8, pattern="window"), "pattern"),
        (lambda: ks.layers.SparseTransformerEncoder(2, 8, centered_layer_norm=1), "centered_layer_norm"),
        (lambda: ks.layers.PositionEmbedding(16.0), "sequence_length"),
        (lambda: ks.layers.TokenEmbedding(0, 4), "input_dim"),
    ],
)
def test_flags_take_booleans_and_numbers_are_checked(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()


def test_numpy_scalars_are_accepted_where_python_numbers_are():
    """Layers built from NumPy scalars have the config of those built from Python numbers."""
    i, f = np.int64, np.float32
    pairs = [
        (
            layer(
                num_heads=i(2), key_dim=i(4), value_dim=i(3), dropout=f(0.25), sliding_window=i(6), output_shape=i(5)
            ),
            layer(num_heads=2, key_dim=4, value_dim=3, dropout=float(f(0.25)), sliding_window=6, output_shape=5),
        ),
        (
            ks.layers.SparseTransformerEncoder(i(2), i(8), dropout=f(0.5), layer_norm_epsilon=f(1e-3), key_dim=i(4)),
            ks.layers.SparseTransformerEncoder(
                2, 8, dropout=float(f(0.5)), layer_norm_epsilon=float(f(1e-3)), key_dim=4
            ),
        ),
        (ks.layers.PositionEmbedding(i(40)), ks.layers.PositionEmbedding(40)),
        (ks.layers.TokenEmbedding(i(10), i(6)), ks.layers.TokenEmbedding(10, 6)),
    ]
    for from_numpy, from_python in pairs:
        assert {**from_numpy.get_config(), "name": ""} == {**from_python.get_config(), "name": ""}
