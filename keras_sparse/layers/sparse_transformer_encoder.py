"""`SparseTransformerEncoder`: keras-hub's TransformerEncoder with sparse self-attention."""

from __future__ import annotations

import keras
from keras import ops

from keras_sparse.layers.activations import get_activation
from keras_sparse.layers.centered_layer_normalization import CenteredLayerNormalization
from keras_sparse.layers.sparse_multi_head_attention import IMPLEMENTATIONS, SparseMultiHeadAttention
from keras_sparse.patterns import Pattern
from keras_sparse.validation import (
    boolean,
    fraction,
    invalid_argument,
    number,
    one_of,
    optional_positive_int,
    positive_int,
    sequence_shape,
)

SUBLAYERS = ("self_attention", "intermediate", "output")
"""Sublayers whose weight constraints (pruning masks included) the config carries."""


def _constraints_of(layer) -> dict:
    prefix = "_" if isinstance(layer, keras.layers.MultiHeadAttention) else ""
    found = {}
    for weight in ("kernel", "bias"):
        constraint = getattr(layer, f"{prefix}{weight}_constraint", None)
        if constraint is not None:
            found[f"{weight}_constraint"] = keras.constraints.serialize(constraint)
    return found


@keras.saving.register_keras_serializable(package="keras_sparse")
class SparseTransformerEncoder(keras.layers.Layer):
    """One Transformer encoder block (self-attention, then a feed-forward network) on a sparse pattern.

    The arguments and the computation are keras-hub's `TransformerEncoder` (post-norm by default,
    pre-norm with `normalize_first=True`), with `SparseMultiHeadAttention` as its self-attention.

    Args:
        num_heads: attention heads.
        intermediate_dim: hidden units of the feed-forward network.
        pattern: a `keras_sparse.patterns.Pattern` (default: dense).
        dropout: dropout rate after attention and feed-forward.
        activation: of the feed-forward network. "relu" (default) runs everywhere; "gelu_tanh" is
            GELU's tanh approximation built from ops TFLite Micro has ("gelu" has no TFLM kernel).
        layer_norm_epsilon: a number > 0 (0 divides by zero on constant inputs).
        kernel_initializer, bias_initializer, normalize_first: as keras-hub.
        implementation: the attention kernel, as in `SparseMultiHeadAttention`.
        key_dim: features per head (default `hidden_dim // num_heads`; pruned heads keep theirs).
        sublayer_constraints: weight constraints per sublayer (`{"intermediate": {"kernel_constraint": ...}}`);
            the pruning callbacks set these, and the config carries them so `.keras` files keep masks.
        centered_layer_norm: normalize with `CenteredLayerNormalization` (the same numbers and weights,
            without the ops TFLite's 16x8 mode lacks); `keras_sparse.centered_layer_norms` sets it.
        causal: each position attends only itself and earlier ones (a decoder block without cross-attention,
            as in GPT): the self-attention layer's `causal`. Defaults to False.
        rotary_max_wavelength: optional float, rotary positions in the self-attention (`SparseMultiHeadAttention`'s
            argument). Defaults to None.

    Call arguments:
        inputs: `(batch, seq_len, hidden_dim)`.
        padding_mask: optional bool `(batch, seq_len)`, False at padding; defaults to the inputs' Keras mask.
        attention_mask: optional bool `(batch, seq_len, seq_len)`, ANDed with the pattern.
        training: whether dropout is applied.
        cache, cache_update_index, bounded_cache: a key/value cache for decoding (the self-attention layer's
            arguments of those names); with a cache the call returns `(outputs, updated cache)`.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> encoder = ks.layers.SparseTransformerEncoder(
    ...     num_heads=2, intermediate_dim=32, pattern=ks.patterns.SlidingWindow(16, block_size=16))
    >>> tuple(encoder(np.zeros((1, 64, 16), "float32")).shape)
    (1, 64, 16)
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int,
        pattern: Pattern | None = None,
        dropout: float = 0.0,
        activation="relu",
        layer_norm_epsilon: float = 1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize_first: bool = False,
        implementation: str = "auto",
        key_dim: int | None = None,
        sublayer_constraints: dict | None = None,
        centered_layer_norm: bool = False,
        causal: bool = False,
        rotary_max_wavelength: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = positive_int("num_heads", num_heads)
        self.intermediate_dim = positive_int("intermediate_dim", intermediate_dim)
        if isinstance(pattern, dict):
            pattern = keras.saving.deserialize_keras_object(pattern)
        if pattern is not None and not isinstance(pattern, Pattern):
            raise invalid_argument("pattern", "None or a keras_sparse.patterns.Pattern", f"pattern={pattern!r}")
        self.pattern = pattern
        self.dropout = fraction("dropout", dropout)
        self.layer_norm_epsilon = number("layer_norm_epsilon", layer_norm_epsilon, above=0)
        self.normalize_first = boolean("normalize_first", normalize_first)
        self.activation = get_activation(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.implementation = one_of("implementation", implementation, IMPLEMENTATIONS)
        self.key_dim = optional_positive_int("key_dim", key_dim)
        self.sublayer_constraints = {
            name: {key: keras.constraints.get(value) for key, value in constraints.items()}
            for name, constraints in (sublayer_constraints or {}).items()
        }
        unknown = set(self.sublayer_constraints) - set(SUBLAYERS)
        if unknown:
            raise ValueError(
                f"Received unknown sublayers {sorted(unknown)} in `sublayer_constraints`; known: {SUBLAYERS}"
            )
        self.centered_layer_norm = boolean("centered_layer_norm", centered_layer_norm)
        self.causal = boolean("causal", causal)
        self.rotary_max_wavelength = rotary_max_wavelength
        self.supports_masking = True

    def _common(self, name: str) -> dict:
        return dict(
            kernel_initializer=self.kernel_initializer.__class__.from_config(self.kernel_initializer.get_config()),
            bias_initializer=self.bias_initializer.__class__.from_config(self.bias_initializer.get_config()),
            dtype=self.dtype_policy,
            name=name,
            **self.sublayer_constraints.get(name, {}),
        )

    def _norm(self, name: str) -> keras.layers.LayerNormalization:
        kind = CenteredLayerNormalization if self.centered_layer_norm else keras.layers.LayerNormalization
        return kind(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)

    def build(self, input_shape):
        hidden_dim = sequence_shape("inputs", input_shape)[-1]
        if self.key_dim is None and hidden_dim % self.num_heads:
            raise ValueError(
                f"Received inputs of {hidden_dim} features, not divisible by num_heads={self.num_heads}: each head "
                "gets hidden_dim // num_heads features. Choose num_heads dividing the hidden size."
            )
        self.self_attention = SparseMultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self.key_dim or hidden_dim // self.num_heads,
            dropout=self.dropout,
            pattern=self.pattern,
            implementation=self.implementation,
            causal=self.causal,
            rotary_max_wavelength=self.rotary_max_wavelength,
            **self._common("self_attention"),
        )
        self.self_attention.build(input_shape, input_shape)
        self.attention_norm = self._norm("attention_norm")
        self.attention_norm.build(input_shape)
        self.attention_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.intermediate = keras.layers.Dense(
            self.intermediate_dim, activation=self.activation, **self._common("intermediate")
        )
        self.intermediate.build(input_shape)
        self.output_dense = keras.layers.Dense(hidden_dim, **self._common("output"))
        self.output_dense.build((*input_shape[:-1], self.intermediate_dim))
        self.feedforward_norm = self._norm("feedforward_norm")
        self.feedforward_norm.build(input_shape)
        self.feedforward_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        mask=None,
        cache=None,
        cache_update_index=None,
        bounded_cache=False,
    ):
        if padding_mask is None:
            padding_mask = mask
        if padding_mask is not None:
            if tuple(padding_mask.shape)[1:] != tuple(inputs.shape)[1:2] or len(padding_mask.shape) != 2:
                raise ValueError(
                    f"Received an invalid value for argument `padding_mask`, expected a bool (batch, "
                    f"{inputs.shape[1]}) mask. Received: padding_mask.shape={tuple(padding_mask.shape)}"
                )
            padding_mask = ops.cast(padding_mask, "bool")
        x = inputs
        residual = x
        if self.normalize_first:
            x = self.attention_norm(x)
        if cache is None:
            x = self.self_attention(x, x, value_mask=padding_mask, attention_mask=attention_mask, training=training)
        else:
            x, cache = self.self_attention(
                x,
                x,
                attention_mask=attention_mask,
                training=training,
                cache=cache,
                cache_update_index=cache_update_index,
                bounded_cache=bounded_cache,
            )
        x = self.attention_dropout(x, training=training) + residual
        if not self.normalize_first:
            x = self.attention_norm(x)
        residual = x
        if self.normalize_first:
            x = self.feedforward_norm(x)
        x = self.output_dense(self.intermediate(x))
        x = self.feedforward_dropout(x, training=training) + residual
        if not self.normalize_first:
            x = self.feedforward_norm(x)
        return x if cache is None else (x, cache)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        pattern = self.self_attention.pattern if self.built else self.pattern
        config = {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "pattern": None if pattern is None else keras.saving.serialize_keras_object(pattern),
            "dropout": self.dropout,
            "activation": keras.activations.serialize(self.activation),
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "normalize_first": self.normalize_first,
            "implementation": self.implementation,
            "key_dim": self.key_dim,
            "centered_layer_norm": self.centered_layer_norm,
            "causal": self.causal,
            "rotary_max_wavelength": self.rotary_max_wavelength,
        }
        if self.built:
            constraints = {name: _constraints_of(getattr(self, _attribute(name))) for name in SUBLAYERS}
            config["sublayer_constraints"] = {name: c for name, c in constraints.items() if c}
        else:
            config["sublayer_constraints"] = {
                name: {key: keras.constraints.serialize(c) for key, c in constraints.items()}
                for name, constraints in self.sublayer_constraints.items()
            }
        return config


def _attribute(name: str) -> str:
    return "output_dense" if name == "output" else name
