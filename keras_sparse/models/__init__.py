"""Model builders: plain functional Keras models made of keras_sparse layers, and pretrained checkpoints."""

from keras_sparse.models.classifier import SparseTransformerClassifier
from keras_sparse.models.huggingface import UnsupportedCheckpointError, from_huggingface

__all__ = ["SparseTransformerClassifier", "UnsupportedCheckpointError", "from_huggingface"]
