"""keras-sparse: sparse attention for Keras 3 (TensorFlow backend) that exports to TFLite.

Example:

>>> import numpy as np, keras_sparse as ks
>>> attention = ks.layers.SparseMultiHeadAttention(
...     num_heads=4, key_dim=32,
...     pattern=ks.patterns.BigBird(block_size=64, num_sliding_window_blocks=3,
...                                 num_global_blocks=2, num_random_blocks=3, seed=0))
>>> x = np.zeros((1, 1024, 128), "float32")
>>> tuple(attention(x, x).shape)
(1, 1024, 128)
"""

import keras

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "keras_sparse needs Keras's TensorFlow backend (its kernels are TensorFlow ops and export to TFLite). "
        f"The backend is {keras.backend.backend()!r}: set KERAS_BACKEND=tensorflow before importing keras."
    )

from keras_sparse import datasets, kernels, layers, models, patterns, pruning, rewrites  # noqa: E402
from keras_sparse.attention_summary import summary  # noqa: E402
from keras_sparse.positions import extend_positions  # noqa: E402
from keras_sparse.rewrites import centered_layer_norms, exportable, sparsify  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "centered_layer_norms",
    "datasets",
    "exportable",
    "extend_positions",
    "kernels",
    "layers",
    "models",
    "patterns",
    "pruning",
    "rewrites",
    "sparsify",
    "summary",
]
