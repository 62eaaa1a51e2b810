"""A model's inputs as a `.tflite` file takes them (batch 1, fixed length), and data for them as checked samples.

A sample is a list with one batch-1 array per input, in the order of `model.inputs` (for a model taking a
dict, its keys sorted, as `keras.tree.flatten` orders them). Data may be an array, a list of arrays (one per
input), a dict of arrays keyed by input name, a `tf.data.Dataset` or any iterable of these, holding batches
or single samples. Every problem with it raises ValueError naming the argument, the input, and what was
expected and received.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping

import keras
import numpy as np
import tensorflow as tf

from keras_sparse.layers import TokenEmbedding


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """One input of the model, as the file takes it.

    Attributes:
        name: the key of a dict-input model, else the `keras.Input`'s name; also the file's input name.
        shape: the file's shape, batch 1 included.
        dtype: the numpy dtype of the file's input.
        id_range: for token ids read by an embedding, the `[low, high)` range it accepts; else None.
        embedding: the name of that embedding layer.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    id_range: tuple[int, int] | None = None
    embedding: str | None = None

    @property
    def spec(self) -> tf.TensorSpec:
        return tf.TensorSpec(self.shape, tf.as_dtype(self.dtype), name=self.name)

    def describe(self) -> str:
        return f"input `{self.name}` takes samples of shape {self.shape[1:]} and dtype {self.dtype}"


def model_inputs(model, seq_len: int | None = None) -> list[ModelInput]:
    """The inputs of a functional or Sequential `model` (keras-hub models are functional) at batch 1.

    Raises:
        ValueError: `model` has no known inputs, or an unknown dimension that `seq_len` does not fix.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Received an invalid value for argument `model`, expected a keras.Model. Received: {model!r}")
    if seq_len is not None and (isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1):
        raise ValueError(
            "Received an invalid value for argument `seq_len`, expected a positive integer. "
            f"Received: seq_len={seq_len!r}"
        )
    if not getattr(model, "inputs", None):
        raise ValueError(
            "Received an invalid value for argument `model`: its inputs are unknown (a subclassed model). The file's "
            "inputs come from the model's: build it as a functional or Sequential model (keras-hub models are)."
        )
    paths = [path for path, _ in keras.tree.flatten_with_path(model.input)]
    ranges = _id_ranges(model)
    inputs = []
    for path, tensor in zip(paths, model.inputs, strict=True):
        name = "/".join(str(key) for key in path) if path and isinstance(model.input, Mapping) else tensor.name
        shape = list(tensor.shape)[1:]
        if shape and shape[0] is None:
            if seq_len is None:
                raise ValueError(
                    "Received an invalid value for argument `seq_len`: the model's sequence length is not fixed, and "
                    f"devices need one (input `{name}` has shape {tuple(tensor.shape)}). Pass seq_len=..."
                )
            shape[0] = int(seq_len)
        elif seq_len is not None and shape and shape[0] != seq_len:
            raise ValueError(
                f"Received an invalid value for argument `seq_len`: the model is built for length {shape[0]}. "
                f"Received: seq_len={seq_len}"
            )
        if any(dim is None for dim in shape):
            raise ValueError(
                f"Received an invalid value for argument `model`: input `{name}` has unknown dimensions "
                f"{tuple(tensor.shape)}. Give it a static shape."
            )
        id_range, embedding = ranges.get(id(tensor), (None, None))
        dtype = np.dtype(keras.backend.standardize_dtype(tensor.dtype))
        inputs.append(ModelInput(name, (1, *shape), dtype, id_range, embedding))
    return inputs


def pack(model, arrays):
    """The structure `model` is called with (a dict, a list or one array) holding `arrays` in input order."""
    return keras.tree.pack_sequence_as(model.input, list(arrays))


def as_samples(data, inputs: list[ModelInput], limit: int | None = None, name: str = "representative_data"):
    """`data` as at most `limit` checked samples: lists with one batch-1 array per input, in the file's dtypes.

    The first `limit` samples are taken (`read_samples` also says how many `data` held).

    float64 (NumPy's default) and other real arrays are cast to a float input's dtype; integer arrays
    (int64, ...) to an integer input's, if their values fit it and the embedding reading them.

    Raises:
        ValueError: naming `name`, for empty data, data that raised while being read, a wrong shape,
            dtype, key or number of arrays, non-finite numbers, or token ids outside the vocabulary.

    Example:

    >>> x = ModelInput("x", (1, 5, 2), np.dtype("float32"))
    >>> [s[0].shape for s in as_samples(np.zeros((3, 5, 2)), [x], limit=2)]
    [(1, 5, 2), (1, 5, 2)]
    """
    return read_samples(data, inputs, limit, name)[0]


def read_samples(
    data, inputs: list[ModelInput], limit: int | None = None, name: str = "representative_data"
) -> tuple[list[list[np.ndarray]], int | None]:
    """`as_samples`, and how many samples `data` held: an int, or None when it holds more than were read (an
    iterable read up to `limit`)."""
    if isinstance(data, tf.data.Dataset):
        data = data.as_numpy_iterator()
    elif _is_one_item(data):
        data = [data]  # one batch, or one sample
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected an array, a list of arrays or a dict of "
            "arrays (one per input), a tf.data.Dataset, or an iterable of samples or batches. "
            f"Received: {type(data).__name__}"
        )
    samples = []
    iterator = iter(data)
    exhausted = False
    while limit is None or len(samples) < limit:
        try:
            item = next(iterator)
        except StopIteration:
            exhausted = True
            break
        except Exception as error:  # a user's generator or dataset: any error is theirs
            raise ValueError(
                f"Received an invalid value for argument `{name}`: reading it raised {type(error).__name__} after "
                f"{len(samples)} samples: {error}"
            ) from error
        samples.extend(_item_samples(item, inputs, name))
    if not samples:
        raise ValueError(
            f"Received an invalid value for argument `{name}`: it holds no samples. Pass typical inputs: "
            f"{'; '.join(i.describe() for i in inputs)}."
        )
    if not exhausted:  # the common case: one batch, read whole
        try:
            exhausted = next(iterator, None) is None
        except Exception:  # a generator raising past what was read: how many it holds is unknown
            pass
    return list(itertools.islice(samples, limit)), len(samples) if exhausted else None


def _is_one_item(data) -> bool:
    if isinstance(data, np.ndarray) or isinstance(data, Mapping):
        return True
    return isinstance(data, (list, tuple)) and bool(data) and all(isinstance(a, np.ndarray) for a in data)


def _item_samples(item, inputs: list[ModelInput], name: str) -> list[list[np.ndarray]]:
    """One item of the data (a batch or a sample) as samples, after checking it."""
    if isinstance(item, Mapping):
        keys, names = set(item), [i.name for i in inputs]
        if keys != set(names):
            missing, unknown = sorted(set(names) - keys), sorted(map(str, keys - set(names)))
            raise ValueError(
                f"Received an invalid value for argument `{name}`: its keys must be the model's input names "
                f"{names}" + (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else "")
            )
        arrays = [item[n] for n in names]
    else:
        arrays = list(item) if isinstance(item, (list, tuple)) else [item]
    if len(arrays) != len(inputs):
        raise ValueError(
            f"Received an invalid value for argument `{name}`: items hold {len(arrays)} arrays, but the model has "
            f"{len(inputs)} inputs ({', '.join(i.name for i in inputs)}). Pass one array per input, or a dict."
        )
    arrays = [_conformed(np.asarray(a), model_input, name) for a, model_input in zip(arrays, inputs, strict=True)]
    batched = [a.ndim == len(i.shape) for a, i in zip(arrays, inputs, strict=True)]
    if all(batched):
        counts = {len(a) for a in arrays}
        if len(counts) > 1:
            raise ValueError(
                f"Received an invalid value for argument `{name}`: its arrays hold different numbers of samples "
                f"({', '.join(f'{i.name}: {len(a)}' for a, i in zip(arrays, inputs, strict=True))})."
            )
        return [[a[k : k + 1] for a in arrays] for k in range(counts.pop())]
    if not any(batched):
        return [[a[None] for a in arrays]]
    raise ValueError(
        f"Received an invalid value for argument `{name}`: some arrays are batches, others single samples."
    )


def _conformed(array: np.ndarray, model_input: ModelInput, name: str) -> np.ndarray:
    """`array` (a batch or one sample) checked against the input and cast to its dtype."""
    expected = model_input.shape[1:]
    if array.shape != expected and (array.ndim != len(expected) + 1 or array.shape[1:] != expected):
        raise ValueError(
            f"Received an invalid value for argument `{name}`: {model_input.describe()} (or batches of shape "
            f"(N, {', '.join(map(str, expected))})); received an array of shape {array.shape}."
        )
    target, kind = model_input.dtype, array.dtype.kind
    if target.kind == "f":
        if kind not in "fiub":
            raise ValueError(_dtype_message(name, model_input, array, "real numbers"))
        if kind == "f" and not np.isfinite(array).all():
            raise ValueError(
                f"Received an invalid value for argument `{name}`: input `{model_input.name}` holds NaN or infinite "
                "values. Pass finite inputs: a file cannot be calibrated or verified on them."
            )
        return array.astype(target)
    if target.kind in "iu":
        if kind not in "iub":
            raise ValueError(_dtype_message(name, model_input, array, "integers"))
        low, high = np.iinfo(target).min, np.iinfo(target).max + 1
        if model_input.id_range is not None:
            low, high = max(low, model_input.id_range[0]), min(high, model_input.id_range[1])
        if array.size and (array.min() < low or array.max() >= high):
            where = f"the embedding `{model_input.embedding}`" if model_input.embedding else f"{target}"
            raise ValueError(
                f"Received an invalid value for argument `{name}`: input `{model_input.name}` takes values in "
                f"[{low}, {high}) ({where}); received values from {array.min()} to {array.max()}."
            )
        return array.astype(target)
    if target.kind == "b" and kind != "b":
        raise ValueError(_dtype_message(name, model_input, array, "booleans"))
    return array.astype(target)


def _dtype_message(name: str, model_input: ModelInput, array: np.ndarray, expected: str) -> str:
    return (
        f"Received an invalid value for argument `{name}`: input `{model_input.name}` takes {expected} "
        f"({model_input.dtype}); received an array of dtype {array.dtype}."
    )


def _id_ranges(model: keras.Model) -> dict[int, tuple[tuple[int, int], str]]:
    """For model inputs read by an embedding (directly, or as the only embedding of a layer): the ids it accepts.

    Keyed by `id()` of the input tensor. Keras's `Embedding` wraps negative ids around; `TokenEmbedding`
    does not.
    """
    input_ids = {id(tensor) for tensor in model.inputs}
    ranges: dict[int, tuple[tuple[int, int], str]] = {}
    for layer in getattr(model, "operations", []):
        if isinstance(layer, keras.layers.Embedding):
            embedding = layer
        elif isinstance(layer, keras.layers.Layer) and not isinstance(layer, keras.Model):
            inner = [
                sub for sub in layer._flatten_layers(include_self=False) if isinstance(sub, keras.layers.Embedding)
            ]
            if len(inner) != 1:
                continue
            embedding = inner[0]
        else:
            continue
        low = 0 if isinstance(embedding, TokenEmbedding) else -embedding.input_dim
        for node in layer._inbound_nodes:
            if embedding is not layer and len(node.input_tensors) != 1:
                continue  # a layer holding one embedding, called on several tensors: which one is the ids?
            for tensor in node.input_tensors:
                if id(tensor) in input_ids and (
                    id(tensor) not in ranges or ranges[id(tensor)][0][1] > embedding.input_dim
                ):
                    ranges[id(tensor)] = ((low, embedding.input_dim), embedding.name)
    return ranges
