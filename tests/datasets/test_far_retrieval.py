"""Far retrieval: the label is the one marked digit, which sits in the last eighth."""

import numpy as np
import pytest

import keras_sparse as ks


def test_label_is_the_marked_digit_in_the_last_eighth():
    data = ks.datasets.far_retrieval(50, seq_len=512, seed=0)
    for text, label in zip(data.texts, data.labels, strict=True):
        words = text.split()
        digits = [i for i, w in enumerate(words) if w.isdigit()]
        assert len(digits) == 1 and words[digits[0] - 1] == "#" and int(words[digits[0]]) == label
        assert digits[0] >= len(words) - len(words) // 8
    assert np.bincount(data.labels).tolist() == [5] * 10


def test_deterministic_by_seed():
    first, again = (ks.datasets.far_retrieval(10, 64, seed=1) for _ in range(2))
    np.testing.assert_array_equal(first.inputs, again.inputs)


def test_too_short_is_named():
    with pytest.raises(ValueError, match="`seq_len`"):
        ks.datasets.far_retrieval(2, seq_len=16)
