"""BigBird (transformers' `BigBirdModel`) as a Keras model of `SparseMultiHeadAttention` layers."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_sparse.layers import PositionEmbedding, SparseMultiHeadAttention, TokenEmbedding
from keras_sparse.models.huggingface import bert_layers
from keras_sparse.models.huggingface.checkpoint import Checkpoint
from keras_sparse.patterns import BigBird, Dense

PREFIX = "bert."
INPUTS = ("input_ids", "attention_mask")
ATTENTION_TYPES = ("block_sparse", "original_full")


def pattern(checkpoint: Checkpoint, random_blocks: str, seed: int):
    """The checkpoint's attention pattern: BigBird's original layout, or `Dense()` for "original_full"."""
    attention_type = checkpoint.option("attention_type", "block_sparse")
    if attention_type not in ATTENTION_TYPES:
        raise checkpoint.unsupported("attention_type", attention_type, f"attention_type in {ATTENTION_TYPES}")
    if attention_type == "original_full":
        return Dense()
    return BigBird(
        block_size=checkpoint.config["block_size"],
        num_sliding_window_blocks=3,
        num_global_blocks=2,
        num_random_blocks=checkpoint.config["num_random_blocks"],
        seed=seed,
        layout_style="original",
        random_blocks=random_blocks,
    )


def build(checkpoint: Checkpoint, seq_len: int | None, random_blocks: str, seed: int) -> keras.Model:
    """The Keras model and its weights; see `keras_sparse.models.from_huggingface`."""
    config = checkpoint.config
    for option, supported in (("is_decoder", False), ("add_cross_attention", False), ("use_bias", True)):
        if bool(checkpoint.option(option, supported)) != supported:
            raise checkpoint.unsupported(option, not supported, f"BigBird encoders with {option}={supported}")
    embedding = checkpoint.option("position_embedding_type", "absolute")
    if embedding != "absolute":
        raise checkpoint.unsupported("position_embedding_type", embedding, "absolute position embeddings")
    num_layers, num_heads, hidden = config["num_hidden_layers"], config["num_attention_heads"], config["hidden_size"]
    longest = config["max_position_embeddings"]
    seq_len = longest if seq_len is None else seq_len
    if seq_len > longest:
        raise ValueError(
            f"Received an invalid value for argument `seq_len`: this checkpoint has positions for {longest} tokens. "
            f"Received: seq_len={seq_len}"
        )
    attention_pattern = pattern(checkpoint, random_blocks, seed)

    inputs = {name: keras.Input((seq_len,), dtype="int32", name=name) for name in INPUTS}
    input_ids = inputs["input_ids"]
    padding = ops.not_equal(inputs["attention_mask"], 0)
    x = TokenEmbedding(config["vocab_size"], hidden, name="word_embeddings")(input_ids)
    if checkpoint.option("rescale_embeddings", False):
        x = x * np.float32(hidden**0.5)
    x = x + TokenEmbedding(config["type_vocab_size"], hidden, name="token_type_embeddings")(ops.zeros_like(input_ids))
    x = x + PositionEmbedding(longest, name="position_embeddings")(x)
    x = keras.layers.Dropout(checkpoint.option("hidden_dropout_prob", 0.0))(x)
    x = keras.layers.LayerNormalization(epsilon=checkpoint.option("layer_norm_eps", 1e-12), name="embeddings_norm")(x)
    for index in range(num_layers):
        attention = SparseMultiHeadAttention(
            num_heads=num_heads,
            key_dim=hidden // num_heads,
            dropout=checkpoint.option("attention_probs_dropout_prob", 0.0),
            pattern=attention_pattern,
            name=f"layer_{index}_attention",
        )(x, x, value_mask=padding)
        x = bert_layers.post_norm_layer(x, attention, index, checkpoint)
    model = keras.Model(inputs, x, name="big_bird")
    bert_layers.load_encoder(model, checkpoint)
    return model
