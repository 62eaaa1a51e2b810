"""Pretrained Longformer, BigBird and Reformer checkpoints (transformers' folder format) as Keras models."""

from keras_sparse.models.huggingface.checkpoint import UnsupportedCheckpointError
from keras_sparse.models.huggingface.loading import from_huggingface

__all__ = ["UnsupportedCheckpointError", "from_huggingface"]
