"""Small model builders: plain functional Keras models made of keras_sparse layers."""

from keras_sparse.models.classifier import SparseTransformerClassifier

__all__ = ["SparseTransformerClassifier"]
