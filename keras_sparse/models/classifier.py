"""`SparseTransformerClassifier`: token ids -> sparse Transformer encoder -> class logits."""

from __future__ import annotations

import keras
from keras import ops

from keras_sparse.layers import PositionEmbedding, SparseTransformerEncoder, TokenEmbedding
from keras_sparse.patterns import Pattern
from keras_sparse.validation import boolean, fraction, one_of, positive_int

POOLINGS = ("cls", "mean")


def SparseTransformerClassifier(  # noqa: N802 (a model constructor, named as Keras names its models)
    vocab_size: int,
    seq_len: int,
    num_layers: int,
    hidden_dim: int,
    num_heads: int,
    intermediate_dim: int,
    pattern: Pattern | None,
    num_classes: int,
    dropout: float = 0.1,
    activation="relu",
    position: str = "learned",
    pooling: str = "cls",
    normalize_first: bool = False,
    implementation: str = "auto",
    name: str = "sparse_transformer_classifier",
) -> keras.Model:
    """A functional Keras model: int32 `tokens (batch, seq_len)` -> float32 `logits (batch, num_classes)`.

    Token id 0 is padding: a padding mask (`tokens != 0`) goes to every encoder, so padded keys get
    no attention. Tokens are embedded with `TokenEmbedding` (one GATHER op, TFLite Micro safe) plus
    learned or sinusoidal positions; `pooling="cls"` reads position 0 (put a classification token
    there, as `keras_sparse.datasets` does), `"mean"` averages the real tokens.

    Example:

    >>> import keras_sparse as ks
    >>> model = ks.models.SparseTransformerClassifier(
    ...     vocab_size=16, seq_len=256, num_layers=2, hidden_dim=32, num_heads=2, intermediate_dim=64,
    ...     pattern=ks.patterns.BigBird(block_size=32, num_global_blocks=1, num_random_blocks=1), num_classes=10)
    >>> model.output_shape
    (None, 10)
    """
    vocab_size, seq_len, num_layers, hidden_dim, num_classes = (
        positive_int(name, value)
        for name, value in (
            ("vocab_size", vocab_size),
            ("seq_len", seq_len),
            ("num_layers", num_layers),
            ("hidden_dim", hidden_dim),
            ("num_classes", num_classes),
        )
    )
    dropout = fraction("dropout", dropout)
    one_of("pooling", pooling, POOLINGS)
    normalize_first = boolean("normalize_first", normalize_first)
    tokens = keras.Input((seq_len,), dtype="int32", name="tokens")
    x = TokenEmbedding(vocab_size, hidden_dim, name="token_embedding")(tokens)
    x = x + PositionEmbedding(seq_len, kind=position, name="position_embedding")(x)
    x = keras.layers.Dropout(dropout)(x)
    padding_mask = ops.not_equal(tokens, 0)
    for index in range(num_layers):
        x = SparseTransformerEncoder(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            pattern=pattern,
            dropout=dropout,
            activation=activation,
            normalize_first=normalize_first,
            implementation=implementation,
            name=f"encoder_{index}",
        )(x, padding_mask=padding_mask)
    if normalize_first:
        x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    if pooling == "cls":
        pooled = x[:, 0]
    else:
        weights = ops.expand_dims(ops.cast(padding_mask, x.dtype), -1)
        pooled = ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
    pooled = keras.layers.Dropout(dropout)(pooled)
    logits = keras.layers.Dense(num_classes, name="logits")(pooled)
    return keras.Model(tokens, logits, name=name)
