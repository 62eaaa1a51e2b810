"""Padding sequences to whole blocks or chunks."""

import tensorflow as tf


def pad_sequence(x: tf.Tensor, padded_len: int, axes: tuple[int, ...] = (1,)) -> tf.Tensor:
    """Zero-pads (False-pads, for masks) the given axes of `x` up to `padded_len`."""
    missing = padded_len - x.shape[axes[0]]
    if missing == 0:
        return x
    paddings = [[0, missing if axis in axes else 0] for axis in range(x.shape.rank)]
    return tf.pad(x, paddings)
