"""Keras layers built on the sparse attention kernels."""

from keras_sparse.layers.sparse_multi_head_attention import SparseMultiHeadAttention

__all__ = ["SparseMultiHeadAttention"]
