"""Activations that every TFLite runtime has kernels for."""

from __future__ import annotations

import math

import keras
from keras import ops

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@keras.saving.register_keras_serializable(package="keras_sparse")
def gelu_tanh(x):
    """GELU's tanh approximation, `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, from MUL, ADD and TANH.

    Keras's "gelu" converts to TFLite's GELU op, which TFLite Micro lacks; this converts to
    ops it has. It differs from exact GELU by under 1e-3.

    Example:

    >>> import numpy as np
    >>> round(float(gelu_tanh(np.float32(1.0))), 4)
    0.8412
    """
    inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
    return 0.5 * x * (1.0 + ops.tanh(inner))


def get_activation(activation):
    """Keras's `activations.get`, knowing "gelu_tanh"."""
    if activation == "gelu_tanh":
        return gelu_tanh
    return keras.activations.get(activation)
