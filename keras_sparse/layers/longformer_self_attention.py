"""`LongformerSelfAttention`: a sliding window for every token, and global attention with its own projections."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_sparse.kernels.masked_softmax import masked_softmax
from keras_sparse.layers.sparse_multi_head_attention import SparseMultiHeadAttention
from keras_sparse.patterns import Pattern, SlidingWindow
from keras_sparse.validation import invalid_argument, positive_int, sequence_shape

GLOBAL_PROJECTIONS = ("query_global", "key_global", "value_global")
MAX_BLOCK_SIZE = 64


@keras.saving.register_keras_serializable(package="keras_sparse")
class LongformerSelfAttention(SparseMultiHeadAttention):
    """Longformer's self-attention, as transformers' `LongformerSelfAttention` computes it.

    Every token attends the tokens within `attention_window // 2` of it and the tokens with global
    attention, with the layer's `query`, `key` and `value` projections. A token with global attention
    attends every token, with projections of its own (`query_global`, `key_global`, `value_global`).
    Padding keys get no attention, and padded query rows give zeros (before the output projection).

    Which tokens take global attention is chosen per example by `global_attention_mask`, among the
    positions in `global_tokens` (fixed when the layer is built: shapes must be static for TFLite).
    The global tokens' keys are appended after the sequence as copies, so that each example's choice
    is a padding mask on the copies and on the originals: the window's kernel
    (`SparseMultiHeadAttention` with `SlidingWindow`) computes both, and the global rows are
    `len(global_tokens)` dense rows.

    Args:
        num_heads: int. Attention heads.
        key_dim: int. Features per head (queries, keys and values).
        attention_window: even int. Longformer's `attention_window`: each token sees
            `attention_window // 2` tokens on either side (as `SlidingWindow(window_size=attention_window)`).
        global_tokens: tuple of int. Positions that may take global attention. Defaults to `(0,)`
            (the classification token). A position of `global_attention_mask` set outside them raises
            when the layer runs eagerly; inside a compiled function it is ignored.
        block_size: optional int. The window kernel's block size; defaults to `min(64, attention_window // 2)`.
        **kwargs: as `SparseMultiHeadAttention` (dropout, use_bias, initializers, implementation,
            blockwise_softmax, ...), except `pattern`.

    Call arguments:
        hidden_states: `(B, T, dim)`.
        padding_mask: optional `(B, T)`, bool or 0/1: False (0) at padding.
        global_attention_mask: optional `(B, T)`, bool or 0/1: True (1) where a token takes global attention.
        training: whether dropout is applied.

    Returns:
        `(B, T, dim)`, the output projection of the attention.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> layer = ks.layers.LongformerSelfAttention(num_heads=2, key_dim=8, attention_window=8, global_tokens=(0, 3))
    >>> x = np.random.default_rng(0).normal(size=(2, 32, 16)).astype("float32")
    >>> global_attention_mask = np.zeros((2, 32), bool)
    >>> global_attention_mask[0, 0] = global_attention_mask[1, 3] = True   # per example, among global_tokens
    >>> tuple(layer(x, global_attention_mask=global_attention_mask).shape)
    (2, 32, 16)

    Reference: Beltagy et al. 2020, "Longformer: The Long-Document Transformer".
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        attention_window: int,
        global_tokens: tuple[int, ...] = (0,),
        block_size: int | None = None,
        **kwargs,
    ):
        if "pattern" in kwargs:
            raise invalid_argument("pattern", "none: the pattern is the window and the global tokens", "pattern given")
        attention_window = positive_int("attention_window", attention_window)
        if attention_window % 2:
            raise invalid_argument(
                "attention_window", "an even integer (as Longformer's)", f"attention_window={attention_window}"
            )
        if block_size is None:
            block_size = min(MAX_BLOCK_SIZE, attention_window // 2)
        # SlidingWindow checks global_tokens and block_size; the layer's own pattern takes the tokens at build.
        window = SlidingWindow(window_size=attention_window, global_tokens=global_tokens, block_size=block_size)
        super().__init__(
            num_heads=num_heads, key_dim=key_dim, pattern=dataclasses.replace(window, global_tokens=()), **kwargs
        )
        self.attention_window, self.global_tokens, self.block_size = (
            attention_window,
            window.global_tokens,
            window.block_size,
        )

    def set_pattern(self, pattern: Pattern) -> None:
        raise ValueError(
            "LongformerSelfAttention's pattern is its window and its global tokens: it cannot be replaced "
            "(attention-blocks pruning does not apply). Prune heads or neurons instead."
        )

    def build(self, hidden_states_shape, padding_mask_shape=None, global_attention_mask_shape=None):
        seq_len = sequence_shape("hidden_states", hidden_states_shape)[1]
        if seq_len is None:
            raise invalid_argument(
                "hidden_states",
                "a static sequence length, as the global tokens' copies are placed after it. Fix: give the model "
                "a fixed length (keras.Input((seq_len, hidden_dim))), or call the layer on a tensor of known shape",
                f"hidden_states.shape={tuple(hidden_states_shape)}",
            )
        outside = [t for t in self.global_tokens if t >= seq_len]
        if outside:
            raise invalid_argument(
                "global_tokens", f"positions below the sequence length {seq_len}", f"global_tokens={self.global_tokens}"
            )
        super().build(hidden_states_shape, hidden_states_shape)
        copies = tuple(range(seq_len, seq_len + len(self.global_tokens)))
        self._pattern = SlidingWindow(
            window_size=self.attention_window, global_tokens=copies, block_size=self.block_size
        )
        for name in GLOBAL_PROJECTIONS:
            local = getattr(self, f"_{name.split('_')[0]}_dense")
            projection = keras.layers.EinsumDense(
                local.equation,
                output_shape=local.partial_output_shape,
                bias_axes=local.bias_axes,
                name=name,
                **self._get_common_kwargs_for_sublayer(),
            )
            projection.build(hidden_states_shape)
            setattr(self, f"_{name}_dense", projection)
        self._global_positions = np.eye(seq_len, dtype=np.float32)[list(self.global_tokens)]  # (G, T) one-hot

    @property
    def global_projections(self) -> list[keras.layers.EinsumDense]:
        """The `query_global`, `key_global` and `value_global` projections."""
        return [getattr(self, f"_{name}_dense") for name in GLOBAL_PROJECTIONS]

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None, global_attention_mask_shape=None):
        return tuple(hidden_states_shape)

    def compute_output_spec(self, hidden_states, padding_mask=None, global_attention_mask=None, training=None):
        return keras.KerasTensor(hidden_states.shape, dtype=self.compute_dtype)

    def call(self, hidden_states, padding_mask=None, global_attention_mask=None, training=None):
        dtype = hidden_states.dtype
        padding = self._as_mask("padding_mask", padding_mask, hidden_states, default=True)
        flags = self._as_mask("global_attention_mask", global_attention_mask, hidden_states, default=False)
        if len(self.global_tokens) < hidden_states.shape[1]:
            self._check_global_tokens(flags)
        query, key, value = (
            self._query_dense(hidden_states),
            self._key_dense(hidden_states),
            self._value_dense(hidden_states),
        )
        if not self.global_tokens:
            output, _ = self._compute_attention(query, key, value, training=training, key_mask=padding)
            return self._output_dense(output * ops.cast(padding, dtype)[:, :, None, None])

        positions = ops.convert_to_tensor(self._global_positions, dtype)  # (G, T)
        is_global = ops.logical_and(
            ops.take(flags, self.global_tokens, axis=1), ops.take(padding, self.global_tokens, axis=1)
        )
        global_weight = ops.cast(is_global, dtype)  # (B, G)
        global_here = ops.matmul(global_weight, positions)  # (B, T): 1 at this example's global tokens

        # Window rows: the global tokens' keys leave the window and come back as copies after the sequence.
        copies = [ops.take(x, self.global_tokens, axis=1) for x in (key, value)]
        extended = (
            ops.concatenate([query, ops.zeros_like(copies[0])], axis=1),
            ops.concatenate([key, copies[0]], axis=1),
            ops.concatenate([value, copies[1]], axis=1),
        )
        local_keys = ops.logical_and(padding, ops.equal(global_here, 0))
        output, _ = self._compute_attention(
            *extended, training=training, key_mask=ops.concatenate([local_keys, is_global], axis=1)
        )
        output = output[:, : hidden_states.shape[1]]

        # Global rows: every token, with the global projections.
        global_hidden = ops.take(hidden_states, self.global_tokens, axis=1)
        global_query = self._query_global_dense(global_hidden) * ops.cast(self._inverse_sqrt_key_dim, dtype)
        scores = ops.einsum("bghd,bthd->bhgt", global_query, self._key_global_dense(hidden_states))
        probabilities = masked_softmax(scores, padding[:, None, None, :])
        if self._dropout > 0.0:
            probabilities = self._dropout_layer(probabilities, training=training)
        global_output = ops.einsum("bhgt,bthd->bghd", probabilities, self._value_global_dense(hidden_states))
        placed = ops.einsum("bghd,gt->bthd", global_output * global_weight[:, :, None, None], positions)
        output = output * (1.0 - global_here)[:, :, None, None] + placed
        return self._output_dense(output * ops.cast(padding, dtype)[:, :, None, None])

    def _as_mask(self, name: str, mask, hidden_states, default: bool):
        if mask is None:
            return ops.full(ops.shape(hidden_states)[:2], default, "bool")
        if len(mask.shape) != 2 or mask.shape[1] != hidden_states.shape[1]:
            raise invalid_argument(
                name, f"a (batch, {hidden_states.shape[1]}) mask", f"{name}.shape={tuple(mask.shape)}"
            )
        return ops.cast(mask, "bool")

    def _check_global_tokens(self, flags) -> None:
        """Eagerly (where values are known), global flags outside `global_tokens` are an error."""
        if not tf.executing_eagerly():
            return
        outside = np.setdiff1d(np.flatnonzero(np.asarray(flags).any(axis=0)), self.global_tokens)
        if len(outside):
            raise invalid_argument(
                "global_attention_mask",
                f"global attention only at the layer's global_tokens {self.global_tokens}",
                f"global attention at positions {outside.tolist()}. Build the layer (or "
                "`keras_sparse.models.from_huggingface`) with those positions in `global_tokens`",
            )

    def get_config(self):
        config = super().get_config()
        config.pop("pattern")
        for name in ("num_heads", "key_dim"):
            config[name] = getattr(self, f"_{name}")
        return {
            **config,
            "attention_window": self.attention_window,
            "global_tokens": self.global_tokens,
            "block_size": self.block_size,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
