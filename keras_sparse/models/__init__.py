"""Model builders: a classifier (plain functional Keras) and a causal language model that generates."""

from keras_sparse.models.causal_lm import SparseCausalLM
from keras_sparse.models.classifier import SparseTransformerClassifier
from keras_sparse.models.decoding import Sampler

__all__ = ["Sampler", "SparseCausalLM", "SparseTransformerClassifier"]
