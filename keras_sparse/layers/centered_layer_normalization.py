"""`CenteredLayerNormalization`: Keras's LayerNormalization without the NEG op that TFLite's 16x8 lacks."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_sparse")
class CenteredLayerNormalization(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` (same arguments, weights and outputs) as `(x - mean) * scale + beta`.

    Keras computes `x * scale + (-mean * scale + beta)` with a NEG op, and its variance with
    SQUARED_DIFFERENCE: TFLite's 16x8 mode has kernels for neither. Centring first and squaring by MUL
    emits MEAN, SUB, MUL, RSQRT and ADD only. `keras_sparse.centered_layer_norms(model)` swaps Keras's
    layer for this one, and the converter does it for 16x8 only: in int8 this order was measured worse
    (a trained ListOps classifier's mean logit error 0.038 against Keras's 0.028).
    (`rms_scaling=True`, deprecated in Keras, is passed on to Keras's computation.)

    Example:

    >>> import numpy as np, keras
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(2, 5, 8)).astype("float32")
    >>> ours, keras_own = CenteredLayerNormalization(), keras.layers.LayerNormalization()
    >>> bool(np.allclose(ours(x), keras_own(x), atol=1e-5))
    True
    """

    def call(self, inputs):
        if self.rms_scaling:
            return super().call(inputs)
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        axes = [axis % len(x.shape) for axis in self.axis]
        broadcast_shape = [x.shape[axis] if axis in axes else 1 for axis in range(len(x.shape))]
        centered = x - ops.mean(x, axis=axes, keepdims=True)
        variance = ops.mean(centered * centered, axis=axes, keepdims=True)  # 16x8 has no SQUARED_DIFFERENCE
        scale = ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            scale = scale * ops.reshape(ops.cast(self.gamma, x.dtype), broadcast_shape)
        outputs = centered * scale
        if self.beta is not None:
            outputs = outputs + ops.reshape(ops.cast(self.beta, x.dtype), broadcast_shape)
        return ops.cast(outputs, self.compute_dtype)
