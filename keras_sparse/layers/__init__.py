"""Keras layers built on the sparse attention kernels."""

from keras_sparse.layers.activations import gelu_tanh
from keras_sparse.layers.axial_position_embedding import AxialPositionEmbedding
from keras_sparse.layers.centered_layer_normalization import CenteredLayerNormalization
from keras_sparse.layers.longformer_self_attention import LongformerSelfAttention
from keras_sparse.layers.position_embedding import PositionEmbedding
from keras_sparse.layers.sparse_multi_head_attention import SparseMultiHeadAttention
from keras_sparse.layers.sparse_transformer_encoder import SparseTransformerEncoder
from keras_sparse.layers.token_embedding import TokenEmbedding

__all__ = [
    "AxialPositionEmbedding",
    "CenteredLayerNormalization",
    "LongformerSelfAttention",
    "PositionEmbedding",
    "SparseMultiHeadAttention",
    "SparseTransformerEncoder",
    "TokenEmbedding",
    "gelu_tanh",
]
