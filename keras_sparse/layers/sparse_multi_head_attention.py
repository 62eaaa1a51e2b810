"""`SparseMultiHeadAttention`: Keras's `MultiHeadAttention`, computed only where a pattern allows."""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import ops
from keras.src.backend import set_keras_mask  # as Keras's own MultiHeadAttention.call; Keras is pinned to 3.15

from keras_sparse import kernels
from keras_sparse.patterns import Dense, Pattern, SlidingWindow

IMPLEMENTATIONS = ("auto", "blocked", "sparse", "segment", "dense")

_AUTO_MAX_WASTE = 32
"""`implementation="auto"` picks the blocked kernel unless it computes over 32x the scores the pattern allows.

Measured by benchmarks/attention.py on 2 CPU cores: the token-level kernels spend about 115 ns per allowed
score (a gather of one key row per pair), the blocked kernel about 2.5 ns per computed score."""


@functools.lru_cache(maxsize=64)
def _gather_plan(
    pattern: Pattern, seq_len: int, causal: bool, max_query_blocks: int | None = None
) -> kernels.GatherPlan:
    return kernels.plan_gathered_blocks(pattern, seq_len, causal=causal, max_query_blocks=max_query_blocks)


@functools.lru_cache(maxsize=64)
def _token_pairs(pattern: Pattern, seq_len: int, num_heads: int, causal: bool) -> kernels.TokenPairs:
    return kernels.plan_token_pairs(pattern, seq_len, num_heads, causal=causal)


def checked_max_query_blocks(value: int | None) -> int | None:
    """`value` if it is None or a positive int; otherwise a ValueError naming `max_query_blocks`."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise _invalid("max_query_blocks", "None or a positive int", f"max_query_blocks={value!r}")
    return value


def _invalid(argument: str, expected: str, received: str) -> ValueError:
    return ValueError(f"Received an invalid value for argument `{argument}`, expected {expected}. Received: {received}")


@keras.saving.register_keras_serializable(package="keras_sparse")
class SparseMultiHeadAttention(keras.layers.MultiHeadAttention):
    """Multi-head attention restricted to a sparse pattern; a drop-in for `keras.layers.MultiHeadAttention`.

    It takes every argument of Keras's layer (tested with Keras 3.15), creates the
    same weights in the same order (so `set_weights(dense_layer.get_weights())`
    works), and with `pattern=P` returns what Keras's layer returns with
    `attention_mask=P.mask(T)`, without computing the scores P excludes.

    Args:
        *args, **kwargs: as `keras.layers.MultiHeadAttention` (num_heads, key_dim, value_dim, dropout,
            use_bias, output_shape, sliding_window, initializers, regularizers, constraints, use_gate, seed).
            `sliding_window=w` is ANDed with the pattern; `attention_axes` may only be the sequence axis;
            `flash_attention` has no effect.
        pattern: a `keras_sparse.patterns.Pattern`. Defaults to `Dense()`. With the input-dependent `LSH`
            pattern the layer is Reformer attention: keys share the query projection (the key projection's
            weights are kept but unused), the hashing rotations are one more, non-trainable weight
            (`lsh_rotations`, `(num_heads, num_hashes, key_dim, buckets / 2)`, from `pattern.rotations`), and
            `attention_mask` / `return_attention_scores` are not available.
        implementation: str, the kernel. One of
            - `"auto"` (default): `"blocked"`, unless blocks would compute over 32x the allowed scores,
              then `"segment"`;
            - `"blocked"`: gathered blocks, TFLite builtins only;
            - `"sparse"`: `tf.sparse` ops, O(nnz) memory; not exportable (`keras_sparse.exportable` swaps it);
            - `"segment"`: the numbers of `"sparse"` with gathers and segment sums, builtins only;
            - `"dense"`: every score computed then masked (a reference for tests).
        max_query_blocks: optional int, the blocked kernel's most query blocks computed in one step. Smaller
            steps give the same numbers with fewer tensors live at once, though each gathers its own
            queries: measure the TFLite Micro arena both ways (`converters.to_micro(max_query_blocks=...)`).
            None (default): as few steps as the pattern allows.
        blockwise_softmax: bool, the blocked kernel takes each row's softmax within chunks of key blocks,
            then across the chunks (`keras_sparse.kernels.blockwise_softmax`): the same numbers in float,
            a little slower, and far more accurate in int8 files, whose SOFTMAX output has steps of 1/256.
            `converters.to_tflite` sets it for int8 (`keras_sparse.rewrites.with_blockwise_softmax`).
            Defaults to False. Other kernels ignore it.

    Call arguments:
        query: `(B, T, dim)`. value: `(B, T, dim)`. key: optional `(B, T, dim)`, defaults to `value`.
        attention_mask: optional bool `(B, T, T)` or `(T, T)`, ANDed with the pattern.
        return_attention_scores: also return the attention probabilities as a dense `(B, num_heads, T, T)`
            tensor. It costs O(T^2) memory: use it to inspect short sequences.
        training: whether dropout is applied.
        use_causal_mask: AND a causal mask (key <= query) with the pattern.
        Keras masks on `query`, `value` and `key` (e.g. from `Embedding(mask_zero=True)`) are honoured.

    The sequence length must be static (known when the layer is traced); the batch may vary.
    Outputs at query positions with no allowed key (e.g. masked padding) are unspecified, as in Keras.

    Example:

    >>> import numpy as np, keras, keras_sparse as ks
    >>> layer = ks.layers.SparseMultiHeadAttention(
    ...     num_heads=2, key_dim=8, pattern=ks.patterns.SlidingWindow(window_size=16, global_tokens=(0,)))
    >>> x = np.random.default_rng(0).normal(size=(1, 100, 16)).astype("float32")
    >>> tuple(layer(x, x).shape)
    (1, 100, 16)
    """

    def __init__(
        self,
        *args,
        pattern: Pattern | None = None,
        implementation: str = "auto",
        max_query_blocks: int | None = None,
        blockwise_softmax: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if pattern is None:
            pattern = Dense()
        if not isinstance(pattern, Pattern):
            raise _invalid(
                "pattern", "a keras_sparse.patterns.Pattern (e.g. SlidingWindow(256))", f"pattern={pattern!r}"
            )
        if implementation not in IMPLEMENTATIONS:
            raise _invalid("implementation", f"one of {IMPLEMENTATIONS}", f"implementation={implementation!r}")
        if self._attention_axes is not None and tuple(self._attention_axes) not in ((1,), (-3,)):
            raise _invalid(
                "attention_axes",
                "None (attention over the sequence axis of (B, T, dim) inputs)",
                f"attention_axes={self._attention_axes}",
            )
        pattern.for_heads(self._num_heads)  # raises if a per-head pattern has another head count
        if pattern.dynamic and (implementation != "auto" or self._sliding_window is not None):
            raise _invalid(
                "implementation",
                "'auto' and no `sliding_window` for an input-dependent pattern (LSH runs on its own kernel)",
                f"implementation={implementation!r}, sliding_window={self._sliding_window}",
            )
        self._pattern = pattern
        self._implementation = implementation
        self.max_query_blocks = max_query_blocks
        self.blockwise_softmax = blockwise_softmax
        self._block_mass_sink = None

    @property
    def pattern(self) -> Pattern:
        return self._pattern

    @property
    def max_query_blocks(self) -> int | None:
        return self._max_query_blocks

    @max_query_blocks.setter
    def max_query_blocks(self, value: int | None) -> None:
        """Takes effect when the layer is next traced."""
        self._max_query_blocks = checked_max_query_blocks(value)

    @property
    def blockwise_softmax(self) -> bool:
        return self._blockwise_softmax

    @blockwise_softmax.setter
    def blockwise_softmax(self, value: bool) -> None:
        """Takes effect when the layer is next traced."""
        if not isinstance(value, bool):
            raise _invalid("blockwise_softmax", "True or False", f"blockwise_softmax={value!r}")
        self._blockwise_softmax = value

    @property
    def implementation(self) -> str:
        return self._implementation

    def set_pattern(self, pattern: Pattern) -> None:
        """Replaces the pattern (the attention-blocks pruning narrows it); traced functions must be retraced."""
        pattern.for_heads(self._num_heads)
        self._pattern = pattern

    def set_block_mass_sink(self, sink) -> None:
        """While training, the blocked kernel hands `sink` each call's `(num_heads, num_blocks, num_blocks)`
        attention mass per block pair (see `kernels.gathered_block_attention`); None stops it."""
        self._block_mass_sink = sink

    @property
    def effective_pattern(self) -> Pattern:
        """The pattern as computed: expanded to this layer's heads, ANDed with Keras's `sliding_window` band."""
        pattern = self._pattern.for_heads(self._num_heads)
        if self._sliding_window is None:
            return pattern
        return pattern & SlidingWindow(window_size=2 * self._sliding_window - 1, block_size=pattern.block_size)

    def get_config(self):
        return {
            **super().get_config(),
            "pattern": keras.saving.serialize_keras_object(self._pattern),
            "implementation": self._implementation,
            "max_query_blocks": self._max_query_blocks,
            "blockwise_softmax": self._blockwise_softmax,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("pattern"), dict):
            config["pattern"] = keras.saving.deserialize_keras_object(config["pattern"])
        return cls(**config)

    def build(self, query_shape, value_shape, key_shape=None):
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if shape is not None and len(shape) != 3:
                raise _invalid(name, "a rank-3 tensor (batch, sequence, features)", f"{name}.shape={tuple(shape)}")
        self._built_seq_len = query_shape[1]
        super().build(query_shape, value_shape, key_shape)
        if self._pattern.dynamic:
            rotations = self._pattern.rotations(self._num_heads, self._key_dim)
            self.lsh_rotations = self.add_weight(
                name="lsh_rotations", shape=rotations.shape, initializer="zeros", trainable=False, autocast=False
            )
            self.lsh_rotations.assign(rotations)

    @property
    def built_seq_len(self) -> int | None:
        """The sequence length the layer was built for (None before it is built or if not static)."""
        return getattr(self, "_built_seq_len", None)

    def compute_output_spec(self, query, value, key=None, return_attention_scores=False, **kwargs):
        output = super().compute_output_spec(query, value, key, **kwargs)
        if not return_attention_scores:
            return output
        scores_shape = (query.shape[0], self._num_heads, query.shape[1], value.shape[1])
        return output, keras.KerasTensor(scores_shape, dtype=self.compute_dtype)

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        if key is None:
            key = value
        # Keras fills the *_mask arguments from the inputs' masks and sets the query's mask on the
        # output; a masked query row's output is unspecified, so query_mask needs no work here. As in
        # Keras, the masks are taken off the inputs so the projections do not warn that they drop them.
        for tensor in (query, value, key):
            set_keras_mask(tensor, None)
        seq_len = self._check_sequences(query, value, key)
        key_padding = None
        for mask in (value_mask, key_mask):
            if mask is not None:
                mask = ops.cast(mask, "bool")
                key_padding = mask if key_padding is None else ops.logical_and(key_padding, mask)
        if self._pattern.dynamic:
            for name, given in (
                ("attention_mask", attention_mask is not None),
                ("return_attention_scores", return_attention_scores),
            ):
                if given:
                    raise _invalid(name, "none with an LSH pattern (its mask depends on the input)", f"{name} given")
        if attention_mask is not None:
            attention_mask = self._check_attention_mask(attention_mask, seq_len)

        gate = self._gate_dense(query) if self._use_gate else None
        attention_output, attention_scores = self._compute_attention(
            self._query_dense(query),
            None if self._pattern.dynamic else self._key_dense(key),  # LSH derives keys from the queries
            self._value_dense(value),
            attention_mask,
            training,
            return_attention_scores,
            use_causal_mask=use_causal_mask,
            key_mask=key_padding,
        )
        if gate is not None:
            attention_output = ops.multiply(attention_output, gate)
        attention_output = self._output_dense(attention_output)
        if return_attention_scores:
            return attention_output, attention_scores
        return attention_output

    def _check_sequences(self, query, value, key) -> int:
        seq_len = query.shape[1]
        if seq_len is None:
            raise _invalid(
                "query",
                "a static sequence length (sparse kernels build their tables for one length); give the model "
                "a fixed-length input, e.g. keras.Input(shape=(1024, dim))",
                f"query.shape={tuple(query.shape)}",
            )
        for name, tensor in (("value", value), ("key", key)):
            if tensor.shape[1] != seq_len:
                raise _invalid(
                    name,
                    f"the query's sequence length {seq_len} (self-attention patterns are square)",
                    f"{name}.shape={tuple(tensor.shape)}",
                )
        self.effective_pattern.check_fits(seq_len)
        return seq_len

    def _check_attention_mask(self, attention_mask, seq_len: int):
        shape = tuple(attention_mask.shape)
        if len(shape) == 2:
            attention_mask = ops.expand_dims(attention_mask, 0)
            shape = (1, *shape)
        if len(shape) != 3 or shape[1:] != (seq_len, seq_len):
            raise _invalid(
                "attention_mask",
                f"a boolean mask of shape (batch, {seq_len}, {seq_len}) or ({seq_len}, {seq_len})",
                f"attention_mask.shape={tuple(attention_mask.shape)}",
            )
        return ops.cast(attention_mask, "bool")

    def kernel_name(self, seq_len: int, causal: bool = False) -> str:
        """The kernel computing a sequence of `seq_len`: "blocked", "segment", "sparse", "dense" or "lsh"."""
        if self._pattern.dynamic:
            return "lsh"
        if self._implementation != "auto":
            return self._implementation
        plan = _gather_plan(self.effective_pattern, seq_len, causal)
        return "blocked" if plan.computed_scores() <= _AUTO_MAX_WASTE * plan.allowed_scores() else "segment"

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
        key_mask=None,
        **kwargs,
    ):
        """Attention on projected `(B, T, num_heads, dim)` tensors with the chosen kernel.

        `key_mask` is a bool `(B, T)` padding mask over keys, kept factored so that no
        `(B, T, T)` tensor is built; `attention_mask` is an optional bool `(B, T, T)`.
        """
        seq_len = query.shape[1]
        kernel = self.kernel_name(seq_len, use_causal_mask)
        dropout = None
        if self._dropout > 0.0:
            dropout = functools.partial(self._dropout_layer, training=training)
        if kernel == "lsh":  # Reformer's shared-QK: keys are the normalised query projections
            pattern = self.effective_pattern
            query, key = kernels.lsh_query_key(query, pattern)
            return kernels.lsh_attention(
                query, key, value, pattern, key_mask, use_causal_mask, dropout, rotations=self.lsh_rotations
            )
        query = ops.multiply(query, ops.cast(self._inverse_sqrt_key_dim, query.dtype))
        masks = dict(
            key_mask=key_mask, attention_mask=attention_mask, dropout=dropout, return_scores=return_attention_scores
        )
        pattern = self.effective_pattern
        if kernel == "blocked":
            return kernels.gathered_block_attention(
                query,
                key,
                value,
                _gather_plan(pattern, seq_len, use_causal_mask, self._max_query_blocks),
                on_block_mass=self._block_mass_sink if training else None,
                blockwise_softmax=self._blockwise_softmax,
                **masks,
            )
        if kernel == "dense":
            mask = pattern.mask(seq_len)
            if use_causal_mask:
                mask = mask & np.tri(seq_len, dtype=bool)
            return kernels.dense_masked_attention(query, key, value, mask, bias=pattern.dense_bias(seq_len), **masks)
        pairs = _token_pairs(pattern, seq_len, self._num_heads, use_causal_mask)
        function = kernels.sparse_attention if kernel == "sparse" else kernels.segment_attention
        return function(query, key, value, pairs, **masks)
