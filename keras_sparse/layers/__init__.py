"""Keras layers built on the sparse attention kernels."""

from keras_sparse.layers.sparse_multi_head_attention import SparseMultiHeadAttention
from keras_sparse.layers.token_embedding import TokenEmbedding

__all__ = ["SparseMultiHeadAttention", "TokenEmbedding"]
