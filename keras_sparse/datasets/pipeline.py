"""`as_dataset`: a `TaskData` as a batched `tf.data.Dataset`, with the padding mask if asked."""

from __future__ import annotations

import tensorflow as tf

from keras_sparse.datasets.listops import TaskData
from keras_sparse.validation import boolean, invalid_argument, non_negative_int, positive_int


def as_dataset(
    data: TaskData, batch_size: int = 32, shuffle_seed: int | None = None, with_padding_mask: bool = False
) -> tf.data.Dataset:
    """`(tokens, labels)` batches; with `with_padding_mask`, `({"tokens", "padding_mask"}, labels)`.

    The padding mask is True at real tokens (id != 0). Models from `keras_sparse.models` derive it
    from the tokens themselves; the explicit form is for models that take it as an input.

    Example:

    >>> import keras_sparse as ks
    >>> batch = next(iter(as_dataset(ks.datasets.listops(4, 64), batch_size=2, with_padding_mask=True)))
    >>> sorted(batch[0]), tuple(batch[0]["padding_mask"].shape)
    (['padding_mask', 'tokens'], (2, 64))
    """
    if not isinstance(data, TaskData):
        raise invalid_argument(
            "data", "a keras_sparse.datasets.TaskData (from listops or far_retrieval)", f"data={data!r}"
        )
    batch_size = positive_int("batch_size", batch_size)
    shuffle_seed = None if shuffle_seed is None else non_negative_int("shuffle_seed", shuffle_seed)
    with_padding_mask = boolean("with_padding_mask", with_padding_mask)
    dataset = tf.data.Dataset.from_tensor_slices((data.inputs, data.labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(max(1, len(data.labels)), seed=shuffle_seed, reshuffle_each_iteration=True)
    if with_padding_mask:
        dataset = dataset.map(lambda tokens, label: ({"tokens": tokens, "padding_mask": tokens != 0}, label))
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
