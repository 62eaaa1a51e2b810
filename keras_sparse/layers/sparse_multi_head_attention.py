"""`SparseMultiHeadAttention`: Keras's `MultiHeadAttention`, computed only where a pattern allows."""

from __future__ import annotations

import functools
import inspect

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from keras.src.backend import set_keras_mask  # as Keras's own MultiHeadAttention.call; Keras is pinned to 3.15

from keras_sparse import kernels
from keras_sparse.layers.position_embedding import rotary_encoding
from keras_sparse.patterns import Dense, Pattern, SlidingWindow
from keras_sparse.validation import (
    boolean,
    fraction,
    invalid_argument,
    is_integer,
    number,
    one_of,
    optional_positive_int,
    positive_int,
    sequence_shape,
)

IMPLEMENTATIONS = ("auto", "blocked", "sparse", "segment", "dense")

_AUTO_MAX_WASTE = 32
"""`implementation="auto"` picks the blocked kernel unless it computes over 32x the scores the pattern allows.

Measured by benchmarks/attention.py on 2 CPU cores: the token-level kernels spend about 115 ns per allowed
score (a gather of one key row per pair), the blocked kernel about 2.5 ns per computed score."""


@functools.lru_cache(maxsize=64)
def _gather_plan(
    pattern: Pattern, seq_len: int, causal: bool, max_query_blocks: int | None = None, single_part: bool = False
) -> kernels.GatherPlan:
    return kernels.plan_gathered_blocks(
        pattern, seq_len, causal=causal, max_query_blocks=max_query_blocks, single_part=single_part
    )


@functools.lru_cache(maxsize=64)
def _token_pairs(pattern: Pattern, seq_len: int, num_heads: int, causal: bool) -> kernels.TokenPairs:
    return kernels.plan_token_pairs(pattern, seq_len, num_heads, causal=causal)


_KERAS_SIGNATURE = inspect.signature(keras.layers.MultiHeadAttention.__init__)
_KERAS_CHECKS = {
    "num_heads": positive_int,
    "key_dim": positive_int,
    "value_dim": optional_positive_int,
    "dropout": fraction,
    "use_bias": boolean,
    "sliding_window": optional_positive_int,
    "use_gate": boolean,
}
"""Keras's own checks refuse NumPy integers and take any value as a flag; these accept the one, refuse the other."""


def _checked_keras_arguments(layer, args: tuple, kwargs: dict) -> dict:
    """Keras's `MultiHeadAttention.__init__` arguments by name, numbers as Python numbers and flags as bools."""
    bound = _KERAS_SIGNATURE.bind(layer, *args, **kwargs).arguments
    arguments = {name: value for name, value in bound.items() if name not in ("self", "kwargs")}
    for name, check in _KERAS_CHECKS.items():
        if name in arguments:
            arguments[name] = check(name, arguments[name])
    if is_integer(arguments.get("output_shape")):
        arguments["output_shape"] = int(arguments["output_shape"])
    return {**arguments, **bound.get("kwargs", {})}


def _compiling_with_xla() -> bool:
    """Whether the function being traced is compiled by XLA (`tf.function(jit_compile=True)`, Keras's jit_compile).

    TensorFlow's own test (private in TF 2.21; tf_keras keeps a copy): such functions trace inside an XLA context.
    """
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


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
            - `"sparse"`: `tf.sparse` ops, O(nnz) memory; not exportable (`keras_sparse.exportable` swaps it)
              and not compiled by XLA. The layer's `supports_jit` is False, so Keras keeps XLA off for the
              model: `compile(jit_compile="auto")` silently, `compile(jit_compile=True)` with Keras's warning
              "Model doesn't support `jit_compile=True`. Proceeding with `jit_compile=False`." Called inside
              your own `tf.function(jit_compile=True)`, the layer raises a ValueError naming `"segment"`;
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
        causal: bool, every call is causal (as with `use_causal_mask=True`): the kernels skip the blocks above
            the diagonal even when the causal mask also arrives as a tensor, as keras-hub's `TransformerDecoder`
            passes it. `keras_sparse.sparsify` sets it for a decoder's self-attention. Defaults to False.
        rotary_max_wavelength: optional float: queries and keys are rotated at their positions before the
            scores (rotary position embedding, Su et al. 2021; `layers.position_embedding.rotary_encoding`), the
            keys before they enter a cache. Self-attention only; the positions are `0, ..., T - 1`, or
            `cache_update_index, ...` with a cache. Needs an even `key_dim`. None (default): no rotation.

    Call arguments:
        query: `(B, T, dim)`. value: `(B, S, dim)`. key: optional `(B, S, dim)`, defaults to `value`.
            With T == S the pattern applies as it is. Otherwise (cross-attention) its rectangular form does
            (`Pattern.rectangular_mask`: length-independent patterns only; others raise a ValueError naming
            the layer).
        attention_mask: optional bool mask, ANDed with the pattern, of any shape Keras's layer takes:
            `(T, S)`, `(B, T, S)` or `(B, num_heads, T, S)`, size-1 axes broadcasting. A mask that is the same
            for every query (keras-hub's `(B, 1, S)` padding mask) costs no `(B, T, S)` tensor. A per-head mask
            needs a pattern shared by all heads.
        return_attention_scores: also return the attention probabilities as a dense `(B, num_heads, T, S)`
            tensor. It costs O(T * S) memory: use it to inspect short sequences.
        training: whether dropout is applied.
        use_causal_mask: AND a causal mask (key <= query) with the pattern.
        cache: optional `(B, 2, S, num_heads, key_dim)` key/value cache, keras-hub's `CachedMultiHeadAttention`
            protocol: with `cache_update_index=i` the new keys and values are written at `i, ..., i + S* - 1`
            and the queries sit at positions `i, ..., i + T - 1`; with `cache_update_index=None` the cached keys
            and values are used as they are. A call with T == S (prefill) uses the sparse kernels; a shorter
            self-attention step computes only the key blocks its rows allow (`kernels.cached_rows_attention`).
            The updated cache is returned after the output (and the scores). Keras masks of the inputs are
            not applied with a cache (as in keras-hub): pass `attention_mask`.
        cache_update_index: optional int or int tensor, where the new keys and values go in `cache`.
        bounded_cache: bool, `cache` is a ring buffer (`kernels.ring_buffer_attention`) of
            `kernels.ring_buffer_layout(pattern).length` slots, not a `max_length` cache: the new tokens sit at
            positions `cache_update_index, ...` (a tensor), and the cache's size and a step's cost do not depend
            on them. Needs a causal layer and a `SlidingWindow` pattern whose global tokens lie within
            `window_size // 2`. Defaults to False.
        Keras masks on `query`, `value` and `key` (e.g. from `Embedding(mask_zero=True)`) are honoured.

    The query length must be static (known when the layer is traced); the batch may vary.
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
        causal: bool = False,
        rotary_max_wavelength: float | None = None,
        **kwargs,
    ):
        super().__init__(**_checked_keras_arguments(self, args, kwargs))
        if pattern is None:
            pattern = Dense()
        if not isinstance(pattern, Pattern):
            raise invalid_argument(
                "pattern", "a keras_sparse.patterns.Pattern (e.g. SlidingWindow(256))", f"pattern={pattern!r}"
            )
        self.implementation = implementation
        if self._attention_axes is not None and tuple(self._attention_axes) not in ((1,), (-3,)):
            raise invalid_argument(
                "attention_axes",
                "None (attention over the sequence axis of (B, T, dim) inputs)",
                f"attention_axes={self._attention_axes}",
            )
        pattern.for_heads(self._num_heads)  # raises if a per-head pattern has another head count
        if pattern.dynamic and (implementation != "auto" or self._sliding_window is not None):
            raise invalid_argument(
                "implementation",
                "'auto' and no `sliding_window` for an input-dependent pattern (LSH runs on its own kernel)",
                f"implementation={implementation!r}, sliding_window={self._sliding_window}",
            )
        self._pattern = pattern
        self._causal = boolean("causal", causal)
        if rotary_max_wavelength is not None:
            rotary_max_wavelength = number("rotary_max_wavelength", rotary_max_wavelength, above=0)
            if self._key_dim % 2 or pattern.dynamic:
                raise invalid_argument(
                    "rotary_max_wavelength",
                    "None with an odd key_dim or an LSH pattern (rotary turns pairs of query and key features)",
                    f"rotary_max_wavelength={rotary_max_wavelength}, key_dim={self._key_dim}",
                )
        self._rotary_max_wavelength = rotary_max_wavelength
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
        self._max_query_blocks = optional_positive_int("max_query_blocks", value)

    @property
    def blockwise_softmax(self) -> bool:
        return self._blockwise_softmax

    @blockwise_softmax.setter
    def blockwise_softmax(self, value: bool) -> None:
        """Takes effect when the layer is next traced."""
        self._blockwise_softmax = boolean("blockwise_softmax", value)

    @property
    def implementation(self) -> str:
        return self._implementation

    @implementation.setter
    def implementation(self, value: str) -> None:
        """Takes effect when the layer is next traced (`keras_sparse.exportable` sets it on a copy)."""
        self._implementation = one_of("implementation", value, IMPLEMENTATIONS)
        # Keras compiles a model with XLA (`jit_compile=True`, or "auto" on GPU machines) only when every layer
        # supports it; tf.sparse ops have no XLA kernels.
        self.supports_jit = value != "sparse"

    @property
    def causal(self) -> bool:
        return self._causal

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
            "causal": self._causal,
            "rotary_max_wavelength": self._rotary_max_wavelength,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("pattern"), dict):
            config["pattern"] = keras.saving.deserialize_keras_object(config["pattern"])
        return cls(**config)

    def build(self, query_shape, value_shape, key_shape=None):
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if shape is not None:
                sequence_shape(name, shape)
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

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        return_attention_scores=False,
        cache=None,
        cache_update_index=None,
        bounded_cache=False,
        **kwargs,
    ):
        outputs = (super().compute_output_spec(query, value, key, **kwargs),)
        if return_attention_scores:
            key_len = value.shape[1] if cache is None else cache.shape[2]
            scores_shape = (query.shape[0], self._num_heads, query.shape[1], key_len)
            outputs += (keras.KerasTensor(scores_shape, dtype=self.compute_dtype),)
        if cache is not None:
            outputs += (keras.KerasTensor(cache.shape, dtype=cache.dtype),)
        return outputs[0] if len(outputs) == 1 else outputs

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
        cache=None,
        cache_update_index=None,
        bounded_cache=False,
    ):
        if key is None:
            key = value
        self_attention = query is value
        # Keras fills the *_mask arguments from the inputs' masks and sets the query's mask on the
        # output; a masked query row's output is unspecified, so query_mask needs no work here. As in
        # Keras, the masks are taken off the inputs so the projections do not warn that they drop them.
        for tensor in (query, value, key):
            set_keras_mask(tensor, None)
        self._check_inputs(query, value, key, cache, cache_update_index, attention_mask, return_attention_scores)
        gate = self._gate_dense(query) if self._use_gate else None
        projected_query = self._rotated(self._query_dense(query), query is value, cache, cache_update_index)
        if bounded_cache:
            self._check_bounded_cache(cache, cache_update_index, attention_mask, return_attention_scores)
            attention_output, cache = self._attend_ring_buffer(
                projected_query, key, value, cache, cache_update_index, training
            )
            if gate is not None:
                attention_output = ops.multiply(attention_output, gate)
            return self._output_dense(attention_output), cache
        projected_key, projected_value, cache = self._keys_and_values(key, value, cache, cache_update_index)
        key_padding = None
        if cache is None:  # with a cache, as keras-hub's CachedMultiHeadAttention, only attention_mask applies
            for mask in (value_mask, key_mask):
                if mask is not None:
                    mask = ops.cast(mask, "bool")
                    key_padding = mask if key_padding is None else ops.logical_and(key_padding, mask)
        head_mask = None
        if attention_mask is not None:
            key_padding, attention_mask, head_mask = self._split_attention_mask(
                attention_mask, query.shape[1], projected_value.shape[1], key_padding, ops.shape(query)[0]
            )
        if cache is None:
            query_start = 0
        else:  # a static cache (no update index) does not say where the queries are
            query_start = cache_update_index
        attend = functools.partial(
            self._compute_attention,
            training=training,
            return_attention_scores=return_attention_scores,
            use_causal_mask=use_causal_mask or self._causal,
            query_start=query_start,
            self_attention=self_attention,
        )
        if head_mask is None:
            attention_output, attention_scores = attend(
                projected_query, projected_key, projected_value, attention_mask, key_mask=key_padding
            )
        else:
            attention_output, attention_scores = self._attend_per_head_mask(
                attend, projected_query, projected_key, projected_value, head_mask, key_padding
            )
        if gate is not None:
            attention_output = ops.multiply(attention_output, gate)
        attention_output = self._output_dense(attention_output)
        outputs = (attention_output,)
        if return_attention_scores:
            outputs += (attention_scores,)
        if cache is not None:
            outputs += (cache,)
        return outputs[0] if len(outputs) == 1 else outputs

    def _check_inputs(self, query, value, key, cache, cache_update_index, attention_mask, return_attention_scores):
        if query.shape[1] is None:
            raise invalid_argument(
                "query",
                "a static sequence length (sparse kernels build their tables for one length). Give the model a "
                "fixed-length input, e.g. keras.Input(shape=(1024, dim)), or pad every batch to one length (a "
                "keras-hub preprocessor's sequence_length). Keras's predict, fit and evaluate each trace one "
                "tf.function with reduce_retracing=True, so after a call at one length a call at another is traced "
                "with the length None: for several lengths call the model directly (`model(x)`), or set "
                "`model.predict_function = None` (`train_function`, `test_function` for fit, evaluate) before "
                "each new length, or use one model per length",
                f"query.shape={tuple(query.shape)}",
            )
        if key.shape[1] != value.shape[1]:
            raise invalid_argument("key", f"value's sequence length {value.shape[1]}", f"key.shape={tuple(key.shape)}")
        if cache is None and cache_update_index is not None:
            raise invalid_argument(
                "cache_update_index", "None when no `cache` is given", f"cache_update_index={cache_update_index}"
            )
        if cache is not None:
            given = tuple(cache.shape)
            if len(given) != 5 or given[1] != 2 or given[3:] != (self._num_heads, self._key_dim):
                raise invalid_argument(
                    "cache",
                    f"a (batch, 2, max_length, {self._num_heads}, {self._key_dim}) key/value cache, as keras-hub's "
                    "CachedMultiHeadAttention's",
                    f"cache.shape={tuple(cache.shape)}",
                )
        if self._pattern.dynamic:
            for name, given in (
                ("attention_mask", attention_mask is not None),
                ("return_attention_scores", return_attention_scores),
                ("cache", cache is not None),
            ):
                if given:
                    raise invalid_argument(
                        name, "none with an LSH pattern (its mask depends on the input)", f"{name} given"
                    )

    def _check_bounded_cache(self, cache, cache_update_index, attention_mask, return_attention_scores):
        layout = kernels.ring_buffer_layout(self.effective_pattern)
        if not self._causal:
            raise invalid_argument(
                "bounded_cache", "False unless the layer is causal (causal=True)", "bounded_cache=True"
            )
        if cache is None or cache_update_index is None:
            raise invalid_argument(
                "cache", "a ring-buffer cache and its cache_update_index with bounded_cache=True", "cache=None"
            )
        if cache.shape[2] != layout.length:
            raise invalid_argument(
                "cache",
                f"a (batch, 2, {layout.length}, {self._num_heads}, {self._key_dim}) ring-buffer cache: "
                f"{len(layout.sinks)} global (sink) slots and {layout.ring_size} window slots",
                f"cache.shape={tuple(cache.shape)}",
            )
        for name, given in (
            ("attention_mask", attention_mask is not None),
            ("return_attention_scores", return_attention_scores),
        ):
            if given:
                raise invalid_argument(name, "none with bounded_cache=True", f"{name} given")

    def _attend_ring_buffer(self, query, key, value, cache, start, training):
        """Attention of the new tokens at `start, ...` against a ring-buffer cache, and the updated cache."""
        dropout = None
        if self._dropout > 0.0:
            dropout = functools.partial(self._dropout_layer, training=training)
        output, keys, values = kernels.ring_buffer_attention(
            ops.multiply(query, ops.cast(self._inverse_sqrt_key_dim, query.dtype)),
            cache[:, 0],
            cache[:, 1],
            self._rotated(self._key_dense(key), True, cache, start),
            self._value_dense(value),
            kernels.ring_buffer_layout(self.effective_pattern),
            start,
            dropout,
        )
        return output, ops.stack((keys, values), axis=1)

    def _keys_and_values(self, key, value, cache, cache_update_index):
        """The projected keys and values the queries attend, and the updated cache (keras-hub's protocol)."""
        if cache is None:
            projected_key = None if self._pattern.dynamic else self._rotated(self._key_dense(key), True, None, None)
            return projected_key, self._value_dense(value), None  # LSH keys are the queries
        if cache_update_index is None:  # a static cache: its keys and values are used as they are
            return cache[:, 0], cache[:, 1], cache
        start = [0, cache_update_index, 0, 0]
        new_keys = self._rotated(self._key_dense(key), True, cache, cache_update_index)
        projected_key = ops.slice_update(cache[:, 0], start, new_keys)
        projected_value = ops.slice_update(cache[:, 1], start, self._value_dense(value))
        return projected_key, projected_value, ops.stack((projected_key, projected_value), axis=1)

    def _rotated(self, projected, self_attention: bool, cache, cache_update_index):
        """Projected queries or new keys `(B, T, H, d)` rotated at their positions (rotary), else as they are."""
        if self._rotary_max_wavelength is None:
            return projected
        if not self_attention or (cache is not None and cache_update_index is None):
            raise invalid_argument(
                "rotary_max_wavelength",
                "None in cross-attention or with a static cache (rotary needs the positions of queries and keys)",
                f"rotary_max_wavelength={self._rotary_max_wavelength}",
            )
        start = 0 if cache is None else ops.cast(cache_update_index, "int32")
        positions = start + ops.arange(projected.shape[1], dtype="int32")
        return rotary_encoding(projected, positions, self._rotary_max_wavelength)

    def _split_attention_mask(self, attention_mask, query_len: int, key_len: int, key_padding, batch_size):
        """Splits a mask Keras's layer would accept into `(key padding (B, S), (B, T, S) mask, (B, H, T, S) mask)`.

        As in Keras, a rank-2 mask is `(T, S)` and a rank-3 mask `(B, T, S)`; size-1 axes broadcast. A mask that
        is the same for every query (keras-hub's `(B, 1, S)` padding mask) joins the key padding, which the kernels
        keep factored: no `(B, T, S)` tensor is built for it.
        """
        shape = tuple(attention_mask.shape)
        expected = (
            f"a boolean mask broadcastable to (batch, {query_len}, {key_len}) or (batch, heads, {query_len}, {key_len})"
        )
        if len(shape) not in (2, 3, 4):
            raise invalid_argument("attention_mask", expected, f"attention_mask.shape={shape}")
        mask = ops.cast(attention_mask, "bool")
        if len(shape) == 2:
            mask, shape = mask[None, None], (1, 1, *shape)
        elif len(shape) == 3:
            mask, shape = mask[:, None], (shape[0], 1, *shape[1:])
        heads, rows, columns = shape[1:]
        if heads not in (1, self._num_heads) or rows not in (1, query_len) or columns not in (1, key_len):
            raise invalid_argument("attention_mask", expected, f"attention_mask.shape={tuple(attention_mask.shape)}")
        if heads == 1 and rows == 1:
            keys = ops.broadcast_to(mask[:, 0, 0, :], (batch_size, key_len))
            return (keys if key_padding is None else ops.logical_and(key_padding, keys)), None, None
        mask = ops.broadcast_to(mask, (batch_size, heads, query_len, key_len))
        if heads == 1:
            return key_padding, mask[:, 0], None
        if self.effective_pattern.num_heads is not None:
            raise invalid_argument(
                "attention_mask",
                "one mask for all heads with a per-head pattern (give the per-head part to the pattern)",
                f"attention_mask.shape={tuple(attention_mask.shape)}",
            )
        return key_padding, None, mask

    def _attend_per_head_mask(self, attend, query, key, value, head_mask, key_padding):
        """Attention with a per-head `(B, H, T, S)` mask: heads fold into the batch, so the kernels see one head."""
        heads = self._num_heads

        def fold(x):  # (B, L, H, d) -> (B * H, L, 1, d)
            x = ops.transpose(x, (0, 2, 1, 3))
            return ops.reshape(x, (-1, x.shape[2], 1, x.shape[3]))

        key_len = head_mask.shape[-1]
        folded_padding = None if key_padding is None else ops.repeat(key_padding, heads, axis=0)
        output, scores = attend(
            fold(query),
            None if key is None else fold(key),
            fold(value),
            ops.reshape(head_mask, (-1, query.shape[1], key_len)),
            key_mask=folded_padding,
        )
        output = ops.transpose(ops.reshape(output, (-1, heads, query.shape[1], output.shape[-1])), (0, 2, 1, 3))
        if scores is not None:
            scores = ops.reshape(scores, (-1, heads, query.shape[1], key_len))
        return output, scores

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
        query_start=0,
        self_attention=True,
        **kwargs,
    ):
        """Attention on projected `(B, T, num_heads, dim)` queries and `(B, S, num_heads, dim)` keys and values.

        `key_mask` is a bool `(B, S)` padding mask over keys, kept factored so that no `(B, T, S)` tensor is
        built; `attention_mask` is an optional bool `(B, T, S)`. `query_start` is the position of the first query
        (an int or, while decoding with a cache, a tensor; None when a static cache does not say). With T == S the
        pattern is applied as it is (the sparse kernels); a self-attention decoding step against a cache takes
        the rows of the cache's pattern at the queries' positions; otherwise (cross-attention) the pattern's
        rectangular form applies.
        """
        query_len, key_len = query.shape[1], value.shape[1]
        dropout = None
        if self._dropout > 0.0:
            dropout = functools.partial(self._dropout_layer, training=training)
        masks = dict(
            key_mask=key_mask, attention_mask=attention_mask, dropout=dropout, return_scores=return_attention_scores
        )
        if query_len == key_len and query_start is not None:
            return self._square_attention(query, key, value, use_causal_mask, training, masks)
        query = ops.multiply(query, ops.cast(self._inverse_sqrt_key_dim, query.dtype))
        if query_start is not None and (self_attention or use_causal_mask):
            self.effective_pattern.check_fits(key_len)
            positions = ops.arange(query_len, dtype="int32") + ops.cast(query_start, "int32")
            if isinstance(self.effective_pattern, Dense) and use_causal_mask:  # every earlier key: nothing to plan
                return self._attend_earlier_keys(query, key, value, positions, masks)
            plan = _gather_plan(self.effective_pattern, key_len, use_causal_mask, single_part=True)
            return kernels.cached_rows_attention(query, key, value, plan, positions, **masks)
        mask, bias = self._rectangular_pattern(query_len, key_len, query_start, use_causal_mask)
        return kernels.dense_masked_attention(query, key, value, mask, bias=bias, **masks)

    @staticmethod
    def _attend_earlier_keys(query, key, value, positions, masks: dict):
        """Dense causal attention of queries at `positions` (a tensor) against a cache: one score per cached key."""
        query_len, key_len = query.shape[1], key.shape[1]
        rows = ops.arange(key_len, dtype="int32")[None, :] <= positions[:, None]
        rows = ops.broadcast_to(rows[None], (ops.shape(query)[0], query_len, key_len))
        if masks["attention_mask"] is not None:
            rows = ops.logical_and(rows, masks["attention_mask"])
        everywhere = np.ones((query_len, key_len), bool)
        return kernels.dense_masked_attention(query, key, value, everywhere, **{**masks, "attention_mask": rows})

    def _square_attention(self, query, key, value, causal: bool, training, masks: dict):
        seq_len = query.shape[1]
        self.effective_pattern.check_fits(seq_len)
        kernel = self.kernel_name(seq_len, causal)
        if kernel == "lsh":  # Reformer's shared-QK: keys are the normalised query projections
            pattern = self.effective_pattern
            query, key = kernels.lsh_query_key(query, pattern)
            return kernels.lsh_attention(
                query, key, value, pattern, masks["key_mask"], causal, masks["dropout"], rotations=self.lsh_rotations
            )
        query = ops.multiply(query, ops.cast(self._inverse_sqrt_key_dim, query.dtype))
        pattern = self.effective_pattern
        if kernel == "blocked":
            return kernels.gathered_block_attention(
                query,
                key,
                value,
                _gather_plan(pattern, seq_len, causal, self._max_query_blocks),
                on_block_mass=self._block_mass_sink if training else None,
                blockwise_softmax=self._blockwise_softmax,
                **masks,
            )
        if kernel == "dense":
            mask = pattern.mask(seq_len)
            if causal:
                mask = mask & np.tri(seq_len, dtype=bool)
            return kernels.dense_masked_attention(query, key, value, mask, bias=pattern.dense_bias(seq_len), **masks)
        if kernel == "sparse" and _compiling_with_xla():
            raise invalid_argument(
                "implementation",
                "a kernel XLA compiles when the layer runs under `jit_compile=True`: 'segment' computes the same "
                "numbers as 'sparse' (whose tf.sparse ops have no XLA kernels), or compile without XLA",
                "implementation='sparse'",
            )
        pairs = _token_pairs(pattern, seq_len, query.shape[2], causal)  # heads fold into the batch for per-head masks
        function = kernels.sparse_attention if kernel == "sparse" else kernels.segment_attention
        return function(query, key, value, pairs, **masks)

    def _rectangular_pattern(self, query_len: int, key_len: int, query_start, causal: bool):
        """The mask (and bias) of queries at `query_start, ...` against keys `0, ..., key_len - 1`."""
        pattern = self.effective_pattern
        if isinstance(query_start, int):
            try:
                mask = pattern.rectangular_mask(query_start + query_len, key_len)[..., query_start:, :]
                bias = pattern.rectangular_bias(query_start + query_len, key_len)
            except ValueError as error:
                raise ValueError(
                    f"Layer '{self.name}' attends {query_len} queries to {key_len} keys (cross-attention), which needs "
                    f"a `pattern` with a rectangular form: {error}"
                ) from None
            if causal:
                mask = mask & (np.arange(key_len) <= np.arange(query_start, query_start + query_len)[:, None])
            return mask, None if bias is None else bias[..., query_start:, :]
        if isinstance(pattern, Dense) and not causal:
            return np.ones((query_len, key_len), bool), None
        raise ValueError(
            f"Layer '{self.name}' attends {query_len} queries to {key_len} cached keys without knowing the queries' "
            f"positions (a static cache, or a cache_update_index tensor in cross-attention), so only "
            f"patterns.Dense() without causality applies there. Received: pattern={pattern!r}, causal={causal}"
        )
