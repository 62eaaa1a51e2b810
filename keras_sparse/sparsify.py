"""`sparsify`: swap every `keras.layers.MultiHeadAttention` in a model for `SparseMultiHeadAttention`."""

from __future__ import annotations

import keras

from keras_sparse.layers import SparseMultiHeadAttention
from keras_sparse.patterns import Pattern


def sparsify(model: keras.Model, pattern: Pattern, implementation: str = "auto") -> keras.Model:
    """Returns a copy of a functional or Sequential `model` whose multi-head attention layers are sparse.

    Weights are carried over, so the copy computes what `model` computes with
    `attention_mask=pattern.mask(T)` in each attention layer. The original is not changed.

    Args:
        model: a built functional or `keras.Sequential` model.
        pattern: the `keras_sparse.patterns.Pattern` every replaced layer uses.
        implementation: the kernel, as in `SparseMultiHeadAttention`.

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input(shape=(128, 16))
    >>> dense = keras.Model(x, keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x))
    >>> sparse = ks.sparsify(dense, pattern=ks.patterns.SlidingWindow(window_size=32))
    >>> type(sparse.layers[1]).__name__
    'SparseMultiHeadAttention'
    """
    if not isinstance(model, keras.Model) or not (isinstance(model, keras.Sequential) or hasattr(model, "_operations")):
        raise ValueError(
            "Received an invalid value for argument `model`, expected a functional or Sequential keras.Model "
            f"(subclassed models cannot be cloned layer by layer). Received: model={model!r}"
        )
    if not isinstance(pattern, Pattern):
        raise ValueError(
            "Received an invalid value for argument `pattern`, expected a keras_sparse.patterns.Pattern. "
            f"Received: pattern={pattern!r}"
        )

    def clone_layer(layer):
        if type(layer) is keras.layers.MultiHeadAttention:
            return SparseMultiHeadAttention.from_config(
                {**layer.get_config(), "pattern": pattern, "implementation": implementation}
            )
        return layer.__class__.from_config(layer.get_config())

    sparse_model = keras.models.clone_model(model, clone_function=clone_layer)
    sparse_model.set_weights(model.get_weights())
    return sparse_model
