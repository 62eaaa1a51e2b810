"""`summary`: one row per attention layer of a model, at any depth: what is sparse, and by how much."""

from __future__ import annotations

import dataclasses

import keras

from keras_sparse.layers import SparseMultiHeadAttention
from keras_sparse.patterns import Dense, Intersection, Pattern, SlidingWindow, Union
from keras_sparse.rewrites.layer_tree import walk
from keras_sparse.validation import optional_positive_int

PATTERN_WIDTH = 56
"""Printed patterns longer than this are cut (the row keeps the whole description)."""


@dataclasses.dataclass(frozen=True)
class AttentionRow:
    """One attention layer.

    Attributes:
        layer: the layer's path below the model, its sublayer names joined by "/"
            ("transformer_layer_0/self_attention_layer" in a keras-hub backbone): unique in the model, and the
            same after a `.keras` save and load (the model's own name when it is the attention layer).
        attention: the layer's class name.
        pattern: the pattern it computes, as its arguments; "Dense()" for Keras's layer (with
            "sliding_window=w" when it sets one: Keras applies it as a dense band mask).
        kernel: what computes it: "blocked", "segment", "sparse", "lsh" or "dense" for ours
            (`SparseMultiHeadAttention.kernel_name`), "dense" for Keras's layer and its subclasses.
        seq_len: the sequence length described (the layer's own, or `summary`'s `seq_len`); None if unknown.
        density: the fraction of (query, key) pairs the pattern allows (`Pattern.describe`); None when it
            depends on the input (LSH) or the length is unknown.
        flop_ratio: dense attention's score FLOPs over this layer's (`Pattern.describe`): 4.0 computes a
            quarter of the scores, 1.0 all of them (Keras's layer, or our "dense" kernel, which masks
            after computing every score). None when density is.
    """

    layer: str
    attention: str
    pattern: str
    kernel: str
    seq_len: int | None
    density: float | None
    flop_ratio: float | None

    @property
    def sparse(self) -> bool:
        """True if the layer computes fewer scores than dense attention."""
        return self.flop_ratio is not None and self.flop_ratio > 1.0


@dataclasses.dataclass(frozen=True)
class AttentionSummary:
    """The attention layers of a model: `rows` as data, `str()` as a table."""

    model: str
    rows: tuple[AttentionRow, ...]

    def __str__(self) -> str:
        if not self.rows:
            return f"{self.model}: no attention layers"
        header = ("layer", "attention", "pattern", "kernel", "seq_len", "density", "FLOPs dense/this")
        table = [header] + [_cells(row) for row in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        lines = [
            "  ".join(
                cell.ljust(width) if i < 4 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(line, widths, strict=True))
            )
            for line in table
        ]
        sparse = sum(row.sparse for row in self.rows)
        lines.append(f"{self.model}: {sparse} of {len(self.rows)} attention layers sparse")
        return "\n".join(line.rstrip() for line in lines)

    __repr__ = __str__


def _cells(row: AttentionRow) -> tuple[str, ...]:
    pattern = row.pattern if len(row.pattern) <= PATTERN_WIDTH else row.pattern[: PATTERN_WIDTH - 3] + "..."
    unknown = "input-dependent" if row.kernel == "lsh" else "-"
    return (
        row.layer,
        row.attention,
        pattern,
        row.kernel,
        "any" if row.seq_len is None else str(row.seq_len),
        unknown if row.density is None else f"{row.density:.1%}",
        unknown if row.flop_ratio is None else f"{row.flop_ratio:.1f}x",
    )


def pattern_arguments(pattern: Pattern) -> str:
    """A pattern as its class and the arguments that differ from their defaults: "SlidingWindow(window_size=64)".

    Unions and intersections read `(a | b)` and `(a & b)`; patterns with a repr of their own (`Learned`
    summarises its layout) keep it.
    """
    if isinstance(pattern, (Union, Intersection)):
        operator = " | " if isinstance(pattern, Union) else " & "
        return f"({pattern_arguments(pattern.first)}{operator}{pattern_arguments(pattern.second)})"
    if type(pattern).__repr__.__code__.co_filename != dataclasses.__file__:
        return repr(pattern)
    arguments = [
        f"{field.name}={_argument(getattr(pattern, field.name))}"
        for field in dataclasses.fields(pattern)
        if field.init and (field.default is dataclasses.MISSING or getattr(pattern, field.name) != field.default)
    ]
    return f"{type(pattern).__name__}({', '.join(arguments)})"


def _argument(value) -> str:
    if isinstance(value, Pattern):
        return pattern_arguments(value)
    if isinstance(value, tuple) and value and all(isinstance(v, Pattern) for v in value):
        return "(" + ", ".join(pattern_arguments(v) for v in value) + ")"
    return repr(value)


def _built_seq_len(layer: keras.layers.MultiHeadAttention) -> int | None:
    if isinstance(layer, SparseMultiHeadAttention):
        return layer.built_seq_len
    query_shape = (layer.get_build_config() or {}).get("shapes_dict", {}).get("query_shape")
    return None if query_shape is None else query_shape[1]


def _row(path: str, layer: keras.layers.MultiHeadAttention, seq_len: int | None) -> AttentionRow:
    seq_len = _built_seq_len(layer) or seq_len
    if isinstance(layer, SparseMultiHeadAttention):
        pattern, shown = layer.effective_pattern, pattern_arguments(layer.pattern)
        if layer._sliding_window is not None:
            shown += f", sliding_window={layer._sliding_window}"
        kernel = layer.implementation if seq_len is None else layer.kernel_name(seq_len)
    else:
        window = getattr(layer, "_sliding_window", None)
        pattern = Dense() if window is None else SlidingWindow(window_size=2 * window - 1)
        shown = "Dense()" if window is None else f"Dense(), sliding_window={window}"
        kernel = "dense"
    if seq_len is None or pattern.dynamic:
        return AttentionRow(path, type(layer).__name__, shown, kernel, seq_len, None, None)
    described = pattern.describe(seq_len)
    flop_ratio = 1.0 if kernel == "dense" else described["flop_ratio"]
    return AttentionRow(path, type(layer).__name__, shown, kernel, seq_len, described["density"], flop_ratio)


def summary(model: keras.layers.Layer, seq_len: int | None = None) -> AttentionSummary:
    """What each attention layer of `model` computes: pattern, kernel, sequence length, density, FLOP ratio.

    One row per `keras.layers.MultiHeadAttention` (ours, Keras's and their subclasses, such as keras-hub's
    `CachedMultiHeadAttention`) at any depth: in nested models and inside layers that hold attention as
    attributes (keras-hub's `TransformerEncoder` / `TransformerDecoder`, our `SparseTransformerEncoder`).
    Density and FLOP ratio are the pattern's own `describe()` at the layer's built length.

    Args:
        model: a Keras model or layer (built).
        seq_len: the length to describe layers built for any length at (keras-hub backbones take
            `(batch, None)` token ids); layers built for one length use theirs. Default: None ("-").

    Returns:
        An `AttentionSummary`: `print` it for a table, read `.rows` (`AttentionRow`s) as data.

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input((256, 16))
    >>> window = ks.patterns.SlidingWindow(window_size=64)
    >>> h = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=8, pattern=window, name="local")(x, x)
    >>> y = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="full")(h, h)
    >>> print(ks.summary(keras.Model(x, y, name="two_layers")))
    layer  attention                 pattern                        kernel   seq_len  density  FLOPs dense/this
    local  SparseMultiHeadAttention  SlidingWindow(window_size=64)  blocked      256    23.8%              4.2x
    full   MultiHeadAttention        Dense()                        dense        256   100.0%              1.0x
    two_layers: 1 of 2 attention layers sparse
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            f"Received an invalid value for argument `model`, expected a Keras model or layer. Received: {model!r}"
        )
    seq_len = optional_positive_int("seq_len", seq_len)
    layers = [(model.name, model)] + [(path, layer) for path, _, layer in walk(model)]
    rows = tuple(
        _row(path, layer, seq_len) for path, layer in layers if isinstance(layer, keras.layers.MultiHeadAttention)
    )
    return AttentionSummary(model.name, rows)
