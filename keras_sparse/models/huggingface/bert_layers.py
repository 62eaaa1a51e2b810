"""What Longformer and BigBird share with BERT: the post-norm layer around attention, weight names and layouts.

transformers' `BertLayer` (copied into both): `attention.output.LayerNorm(x + dropout(attention))`, then
`output.LayerNorm(h + dropout(output.dense(act(intermediate.dense(h)))))`. The attention's own output
projection (`attention.output.dense`) is the Keras attention layer's output projection.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_sparse.layers import LongformerSelfAttention
from keras_sparse.layers.activations import gelu_tanh
from keras_sparse.models.huggingface.checkpoint import Checkpoint, assign

ACTIVATIONS = {
    "gelu": keras.activations.gelu,  # exact (erf) GELU, as torch's
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
}
"""transformers' `hidden_act` names and the Keras functions that compute them."""


def activation(checkpoint: Checkpoint):
    name = checkpoint.option("hidden_act", "gelu")
    if name not in ACTIVATIONS:
        raise checkpoint.unsupported("hidden_act", name, f"hidden_act in {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def post_norm_layer(x, attention_output, index: int, checkpoint: Checkpoint):
    """The rest of BERT layer `index` after its attention: residuals, layer norms and the feed-forward pair."""
    epsilon = checkpoint.option("layer_norm_eps", 1e-12)
    dropout = checkpoint.option("hidden_dropout_prob", 0.0)
    attention_output = keras.layers.Dropout(dropout)(attention_output)
    x = keras.layers.LayerNormalization(epsilon=epsilon, name=f"layer_{index}_attention_norm")(x + attention_output)
    hidden = keras.layers.Dense(
        checkpoint.config["intermediate_size"], activation=activation(checkpoint), name=f"layer_{index}_intermediate"
    )(x)
    output = keras.layers.Dropout(dropout)(keras.layers.Dense(x.shape[-1], name=f"layer_{index}_output")(hidden))
    return keras.layers.LayerNormalization(epsilon=epsilon, name=f"layer_{index}_output_norm")(x + output)


def load_encoder(model: keras.Model, checkpoint: Checkpoint) -> None:
    """Every weight of a model built from `embeddings` and `post_norm_layer`s around attention layers named
    `layer_{i}_attention` (a `LongformerSelfAttention` also gets its global projections)."""
    num_heads = checkpoint.config["num_attention_heads"]
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        assign(model.get_layer(name), [checkpoint.weight(f"embeddings.{name}.weight")], f"embeddings.{name}")
    assign(model.get_layer("embeddings_norm"), layer_norm(checkpoint, "embeddings.LayerNorm"), "embeddings.LayerNorm")
    for index in range(checkpoint.config["num_hidden_layers"]):
        attention = model.get_layer(f"layer_{index}_attention")
        prefix = f"encoder.layer.{index}.attention"
        projections = [
            (attention._query_dense, "query"),
            (attention._key_dense, "key"),
            (attention._value_dense, "value"),
        ]
        if isinstance(attention, LongformerSelfAttention):
            projections += zip(
                attention.global_projections, ("query_global", "key_global", "value_global"), strict=True
            )
        for projection, name in projections:
            load_projection(projection, checkpoint, f"{prefix}.self.{name}", num_heads)
        load_output_projection(attention._output_dense, checkpoint, f"{prefix}.output.dense", num_heads)
        _load_post_norm_layer(model, index, checkpoint)


def _load_post_norm_layer(model: keras.Model, index: int, checkpoint: Checkpoint) -> None:
    """Weights of `post_norm_layer(index)` from `encoder.layer.{index}`."""
    prefix = f"encoder.layer.{index}"
    for layer, source in (
        ("attention_norm", "attention.output.LayerNorm"),
        ("intermediate", "intermediate.dense"),
        ("output", "output.dense"),
        ("output_norm", "output.LayerNorm"),
    ):
        values = (
            layer_norm(checkpoint, f"{prefix}.{source}") if "norm" in layer else checkpoint.linear(f"{prefix}.{source}")
        )
        assign(model.get_layer(f"layer_{index}_{layer}"), values, f"{prefix}.{source}")


def layer_norm(checkpoint: Checkpoint, name: str) -> list[np.ndarray]:
    return [checkpoint.weight(f"{name}.weight"), checkpoint.weight(f"{name}.bias")]


def load_projection(projection, checkpoint: Checkpoint, name: str, num_heads: int, bias: bool = True) -> None:
    """A Linear `(heads * head_dim, dim)` into a query/key/value EinsumDense `(dim, heads, head_dim)`."""
    kernel, *rest = checkpoint.linear(name, bias)
    values = [kernel.reshape(kernel.shape[0], num_heads, -1), *(b.reshape(num_heads, -1) for b in rest)]
    assign(projection, values, name)


def load_output_projection(projection, checkpoint: Checkpoint, name: str, num_heads: int, bias: bool = True) -> None:
    """A Linear `(dim, heads * head_dim)` into an attention output EinsumDense `(heads, head_dim, dim)`."""
    kernel, *rest = checkpoint.linear(name, bias)
    assign(projection, [kernel.reshape(num_heads, -1, kernel.shape[-1]), *rest], name)
