"""Reformer (transformers' `ReformerModel`) as a Keras model of LSH and local `SparseMultiHeadAttention` layers.

Reformer's layers are reversible (RevNet): `y1 = x1 + attention(norm(x2))`, `y2 = x2 + feed_forward(norm(y1))`,
starting from `x1 = x2 = embeddings`, and the output is `norm(concat(y1, y2))`, `2 * hidden_size` wide.
Keras computes them as ordinary residuals: the numbers are the same, but training keeps activations
(no reversible-layer memory savings).
"""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
from keras import ops

from keras_sparse.layers import AxialPositionEmbedding, PositionEmbedding, SparseMultiHeadAttention, TokenEmbedding
from keras_sparse.models.huggingface import bert_layers
from keras_sparse.models.huggingface.checkpoint import Checkpoint, UnsupportedCheckpointError, assign
from keras_sparse.patterns import LSH, BlockLocal

PREFIX = "reformer."
INPUTS = ("input_ids", "attention_mask")
ROTATIONS_FILE = "lsh_rotations.safetensors"
ATTENTION_KINDS = ("lsh", "local")


def padded_length(checkpoint: Checkpoint, seq_len: int) -> int:
    """The length transformers runs: padded to a multiple of the chunk lengths' least common multiple when longer
    than the shortest chunk (`ReformerModel._pad_to_mult_of_chunk_length`)."""
    chunks = _chunk_lengths(checkpoint)
    multiple = math.lcm(*chunks)
    if seq_len % multiple and seq_len > min(chunks):
        return seq_len + multiple - seq_len % multiple
    return seq_len


def _chunk_lengths(checkpoint: Checkpoint) -> list[int]:
    kinds = set(checkpoint.config["attn_layers"])
    return [checkpoint.config[f"{kind}_attn_chunk_length"] for kind in ATTENTION_KINDS if kind in kinds]


def num_buckets(checkpoint: Checkpoint, padded_len: int):
    """`num_buckets`, or transformers' choice when the config leaves it unset (`LSHSelfAttention._set_num_buckets`)."""
    value = checkpoint.config.get("num_buckets")
    if value is not None:
        return tuple(value) if isinstance(value, list) else value
    chunk = checkpoint.config["lsh_attn_chunk_length"]
    power = (2 * (padded_len // chunk)).bit_length() - 1
    limit = 2 * max(int((checkpoint.config["max_position_embeddings"] // chunk) ** 0.5), chunk)
    return (2 ** (power // 2), 2 ** (power - power // 2)) if 2**power > limit else 2**power


def patterns(checkpoint: Checkpoint, padded_len: int, seed: int) -> list:
    """Each layer's pattern: `LSH(semantics="trax")` or `BlockLocal(wrap=True)`."""
    config, result = checkpoint.config, []
    for kind in config["attn_layers"]:
        if kind not in ATTENTION_KINDS:
            raise checkpoint.unsupported("attn_layers", config["attn_layers"], f"layers of kinds {ATTENTION_KINDS}")
        if kind == "lsh":
            result.append(
                LSH(
                    num_buckets=num_buckets(checkpoint, padded_len),
                    num_hashes=config["num_hashes"],
                    chunk_size=config["lsh_attn_chunk_length"],
                    seed=seed,
                    num_chunks_before=config["lsh_num_chunks_before"],
                    num_chunks_after=config["lsh_num_chunks_after"],
                    semantics="trax",
                )
            )
        else:
            result.append(
                BlockLocal(
                    block_size=config["local_attn_chunk_length"],
                    num_blocks_before=config["local_num_chunks_before"],
                    num_blocks_after=config["local_num_chunks_after"],
                    wrap=True,
                )
            )
    return result


def build(checkpoint: Checkpoint, seq_len: int | None, seed: int) -> keras.Model:
    """The Keras model and its weights; see `keras_sparse.models.from_huggingface`."""
    config = checkpoint.config
    hidden, num_heads, head_dim = config["hidden_size"], config["num_attention_heads"], config["attention_head_size"]
    longest = config["max_position_embeddings"]
    if config.get("axial_pos_embds", True):
        longest = min(longest, math.prod(config["axial_pos_shape"]))
    seq_len = longest if seq_len is None else seq_len
    padded_len = padded_length(checkpoint, seq_len)
    if padded_len > longest:
        raise ValueError(
            f"Received an invalid value for argument `seq_len`: this checkpoint has positions for {longest} tokens, "
            f"and a sequence of {seq_len} runs padded to {padded_len}. Received: seq_len={seq_len}"
        )
    layer_patterns = patterns(checkpoint, padded_len, seed)
    epsilon, dropout = checkpoint.option("layer_norm_eps", 1e-12), checkpoint.option("hidden_dropout_prob", 0.0)
    causal = bool(checkpoint.option("is_decoder", False))

    inputs = {name: keras.Input((seq_len,), dtype="int32", name=name) for name in INPUTS}
    input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
    if padded_len > seq_len:  # as transformers: padding tokens, masked
        pad_ids = ops.full_like(input_ids[:, : padded_len - seq_len], checkpoint.option("pad_token_id", 0))
        input_ids = ops.concatenate([input_ids, pad_ids], axis=1)
        attention_mask = ops.concatenate([attention_mask, ops.zeros_like(pad_ids)], axis=1)
    padding = ops.not_equal(attention_mask, 0)
    x = TokenEmbedding(config["vocab_size"], hidden, name="word_embeddings")(input_ids)
    x = keras.layers.Dropout(dropout)(x)
    if config.get("axial_pos_embds", True):
        positions = AxialPositionEmbedding(
            config["axial_pos_shape"], config["axial_pos_embds_dim"], name="position_embeddings"
        )
    else:
        positions = PositionEmbedding(config["max_position_embeddings"], name="position_embeddings")
    x = x + positions(x)
    attention_output = hidden_states = x
    for index, pattern in enumerate(layer_patterns):
        normed = keras.layers.LayerNormalization(epsilon=epsilon, name=f"layer_{index}_attention_norm")(hidden_states)
        kind = "lsh" if isinstance(pattern, LSH) else "local"
        attended = SparseMultiHeadAttention(
            num_heads=num_heads,
            key_dim=head_dim,
            use_bias=False,
            dropout=checkpoint.option(f"{kind}_attention_probs_dropout_prob", 0.0),
            pattern=pattern,
            name=f"layer_{index}_attention",
        )(normed, normed, value_mask=padding, use_causal_mask=causal)
        attention_output = attention_output + keras.layers.Dropout(dropout)(attended)
        normed = keras.layers.LayerNormalization(epsilon=epsilon, name=f"layer_{index}_feed_forward_norm")(
            attention_output
        )
        feed_forward = keras.layers.Dense(config["feed_forward_size"], name=f"layer_{index}_intermediate")(normed)
        feed_forward = keras.layers.Activation(bert_layers.activation(checkpoint))(
            keras.layers.Dropout(dropout)(feed_forward)
        )
        feed_forward = keras.layers.Dense(hidden, name=f"layer_{index}_output")(feed_forward)
        hidden_states = hidden_states + keras.layers.Dropout(dropout)(feed_forward)
    x = ops.concatenate([attention_output, hidden_states], axis=-1)
    x = keras.layers.LayerNormalization(epsilon=epsilon, name="final_norm")(x)
    x = keras.layers.Dropout(dropout)(x)
    model = keras.Model(inputs, x[:, :seq_len] if padded_len > seq_len else x, name="reformer")
    _load(model, checkpoint, layer_patterns, num_heads)
    return model


def _load(model: keras.Model, checkpoint: Checkpoint, layer_patterns: list, num_heads: int) -> None:
    assign(model.get_layer("word_embeddings"), [checkpoint.weight("embeddings.word_embeddings.weight")], "embeddings")
    if checkpoint.config.get("axial_pos_embds", True):
        tables = [checkpoint.weight(f"embeddings.position_embeddings.weights.{axis}") for axis in (0, 1)]
        tables = [table.reshape(-1, table.shape[-1]) for table in tables]  # (rows, 1, d0) and (1, columns, d1)
    else:
        tables = [checkpoint.weight("embeddings.position_embeddings.embedding.weight")]
    assign(model.get_layer("position_embeddings"), tables, "embeddings.position_embeddings")
    assign(
        model.get_layer("final_norm"), bert_layers.layer_norm(checkpoint, "encoder.layer_norm"), "encoder.layer_norm"
    )
    rotations = checkpoint.files.get(ROTATIONS_FILE)
    if rotations is None and any(isinstance(p, LSH) for p in layer_patterns):
        _warn_about_rotations(checkpoint)
    for index, pattern in enumerate(layer_patterns):
        prefix = f"encoder.layers.{index}"
        attention = model.get_layer(f"layer_{index}_attention")
        names = ("query_key", "query_key", "value") if isinstance(pattern, LSH) else ("query", "key", "value")
        for projection, name in zip(
            (attention._query_dense, attention._key_dense, attention._value_dense), names, strict=True
        ):
            bert_layers.load_projection(
                projection, checkpoint, f"{prefix}.attention.self_attention.{name}", num_heads, bias=False
            )
        bert_layers.load_output_projection(
            attention._output_dense, checkpoint, f"{prefix}.attention.output.dense", num_heads, bias=False
        )
        if rotations is not None and isinstance(pattern, LSH):
            name = f"{prefix}.attention.self_attention.rotations"
            if name not in rotations:
                raise checkpoint.unsupported(ROTATIONS_FILE, f"without {name}", "rotations for every LSH layer")
            assign_rotations(attention, rotations[name], name)
        for layer, source in (
            ("attention_norm", f"{prefix}.attention.layer_norm"),
            ("feed_forward_norm", f"{prefix}.feed_forward.layer_norm"),
        ):
            assign(model.get_layer(f"layer_{index}_{layer}"), bert_layers.layer_norm(checkpoint, source), source)
        for layer, source in (
            ("intermediate", f"{prefix}.feed_forward.dense.dense"),
            ("output", f"{prefix}.feed_forward.output.dense"),
        ):
            assign(model.get_layer(f"layer_{index}_{layer}"), checkpoint.linear(source), source)


def assign_rotations(attention: SparseMultiHeadAttention, rotations: np.ndarray, source: str) -> None:
    """transformers' rotations `(heads, head_dim, num_hashes, buckets / 2)` into the layer's `lsh_rotations`."""
    values = np.transpose(rotations, (0, 2, 1, 3))  # -> (heads, num_hashes, head_dim, buckets / 2)
    heads, hashes, head_dim, half_buckets = attention.lsh_rotations.shape
    if values.shape != (heads, hashes, head_dim, half_buckets):
        raise UnsupportedCheckpointError(
            f"The rotations {source} have shape {rotations.shape} (heads, head_dim, num_hashes, buckets / 2); "
            f"layer '{attention.name}' needs {(heads, head_dim, hashes, half_buckets)}."
        )
    attention.lsh_rotations.assign(values)


def _warn_about_rotations(checkpoint: Checkpoint) -> None:
    seed = checkpoint.config.get("hash_seed")
    why = (
        "transformers draws new LSH rotations on every call (hash_seed is None), so its outputs vary from call to call"
        if seed is None
        else f"transformers draws its LSH rotations with torch's generator (hash_seed={seed}), not NumPy's"
    )
    warnings.warn(
        f"{checkpoint.path} has no {ROTATIONS_FILE}: {why}. The Keras model hashes with its own seeded rotations "
        "(`seed`). To match transformers exactly, record the rotations in that file (docs/checkpoints.md shows how).",
        stacklevel=4,
    )
