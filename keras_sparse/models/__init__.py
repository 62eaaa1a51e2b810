"""Model builders: a classifier, a causal language model that generates, and pretrained checkpoints."""

from keras_sparse.models.causal_lm import SparseCausalLM
from keras_sparse.models.classifier import SparseTransformerClassifier
from keras_sparse.models.decoding import Sampler
from keras_sparse.models.huggingface import UnsupportedCheckpointError, from_huggingface

__all__ = ["Sampler", "SparseCausalLM", "SparseTransformerClassifier", "UnsupportedCheckpointError", "from_huggingface"]
