"""Longformer (transformers' `LongformerModel`) as a Keras model of `LongformerSelfAttention` layers."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_sparse.layers import LongformerSelfAttention, TokenEmbedding
from keras_sparse.models.huggingface import bert_layers
from keras_sparse.models.huggingface.checkpoint import Checkpoint

PREFIX = "longformer."
INPUTS = ("input_ids", "attention_mask", "global_attention_mask")
DEFAULT_GLOBAL_TOKENS = (0,)


def build(checkpoint: Checkpoint, seq_len: int | None, global_tokens: tuple[int, ...] | None) -> keras.Model:
    """The Keras model and its weights; see `keras_sparse.models.from_huggingface`."""
    config = checkpoint.config
    for option in ("is_decoder", "add_cross_attention"):
        if checkpoint.option(option, False):
            raise checkpoint.unsupported(option, True, "Longformer encoders")
    num_layers, num_heads, hidden = config["num_hidden_layers"], config["num_attention_heads"], config["hidden_size"]
    windows = config["attention_window"]
    windows = [windows] * num_layers if isinstance(windows, int) else list(windows)
    pad = checkpoint.option("pad_token_id", 1)
    longest = config["max_position_embeddings"] - pad - 1  # position ids run from pad + 1 (RoBERTa's offset)
    seq_len = longest if seq_len is None else seq_len
    if seq_len > longest:
        raise ValueError(
            f"Received an invalid value for argument `seq_len`: this checkpoint has positions for {longest} tokens. "
            f"Received: seq_len={seq_len}"
        )
    if global_tokens is not None and not isinstance(global_tokens, (tuple, list, np.ndarray)):
        raise ValueError(
            "Received an invalid value for argument `global_tokens`, expected a tuple of positions such as (0,). "
            f"Received: global_tokens={global_tokens!r}"
        )
    global_tokens = DEFAULT_GLOBAL_TOKENS if global_tokens is None else tuple(global_tokens)

    inputs = {name: keras.Input((seq_len,), dtype="int32", name=name) for name in INPUTS}
    input_ids = inputs["input_ids"]
    padding = ops.not_equal(inputs["attention_mask"], 0)
    is_token = ops.cast(ops.not_equal(input_ids, pad), "int32")
    position_ids = ops.cumsum(is_token, axis=1) * is_token + pad  # create_position_ids_from_input_ids
    x = TokenEmbedding(config["vocab_size"], hidden, name="word_embeddings")(input_ids)
    x = x + TokenEmbedding(config["max_position_embeddings"], hidden, name="position_embeddings")(position_ids)
    x = x + TokenEmbedding(config["type_vocab_size"], hidden, name="token_type_embeddings")(ops.zeros_like(input_ids))
    x = keras.layers.LayerNormalization(epsilon=checkpoint.option("layer_norm_eps", 1e-12), name="embeddings_norm")(x)
    x = keras.layers.Dropout(checkpoint.option("hidden_dropout_prob", 0.0))(x)
    for index, window in enumerate(windows):
        attention = LongformerSelfAttention(
            num_heads=num_heads,
            key_dim=hidden // num_heads,
            attention_window=window,
            global_tokens=global_tokens,
            dropout=checkpoint.option("attention_probs_dropout_prob", 0.0),
            name=f"layer_{index}_attention",
        )(x, padding_mask=padding, global_attention_mask=inputs["global_attention_mask"])
        x = bert_layers.post_norm_layer(x, attention, index, checkpoint)
    model = keras.Model(inputs, x, name="longformer")
    bert_layers.load_encoder(model, checkpoint)
    return model
