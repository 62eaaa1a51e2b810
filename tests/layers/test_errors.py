"""Bad input gets a ValueError naming the argument and the fix."""

import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks

PATTERN = ks.patterns.SlidingWindow(8, global_tokens=(30,))


def layer(**kwargs):
    return ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, **{"pattern": PATTERN, **kwargs})


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


def test_unknown_sequence_length_names_the_fix():
    attention = layer(pattern=ks.patterns.SlidingWindow(8))
    traced = tf.function(lambda q: attention(q, q), input_signature=[tf.TensorSpec((None, None, 6), tf.float32)])
    with pytest.raises(ValueError, match="static sequence length.*keras.Input"):
        traced(x(1, 40, 6))
