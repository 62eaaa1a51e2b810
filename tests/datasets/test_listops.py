"""ListOps: answers checked by an independent evaluator, deterministic by seed, lengths in bounds."""

import numpy as np
import pytest

import keras_sparse as ks


def independent_value(tokens: list[str]) -> int:
    """Recursive descent over the token list (the library evaluates with a stack)."""

    def parse(position):
        token = tokens[position]
        if token.isdigit():
            return int(token), position + 1
        values, position = [], position + 1
        while tokens[position] != "]":
            value, position = parse(position)
            values.append(value)
        ordered = sorted(values)
        result = {
            "[MAX": ordered[-1],
            "[MIN": ordered[0],
            "[MED": (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) // 2,
            "[SM": sum(values) % 10,
        }[token]
        return result, position + 1

    value, end = parse(0)
    assert end == len(tokens)
    return value


@pytest.fixture(scope="module")
def data():
    return ks.datasets.listops(300, max_length=256, seed=3)


def test_answers_match_an_independent_evaluator(data):
    for text, label in zip(data.texts, data.labels, strict=True):
        assert independent_value(text.split()) == label


def test_ids_encode_the_texts_with_cls_and_padding(data):
    for text, ids in zip(data.texts, data.inputs, strict=True):
        assert ids[0] == 1 and data.vocabulary.decode(ids) == text
        length = len(text.split()) + 1
        assert (ids[:length] > 0).all() and (ids[length:] == 0).all()


def test_lengths_within_bounds_and_depth_at_most_ten(data):
    lengths = np.array([len(t.split()) for t in data.texts])
    assert lengths.min() >= 256 // 4 and lengths.max() <= 255
    for text in data.texts:
        depth = np.cumsum([1 if t.startswith("[") else -1 if t == "]" else 0 for t in text.split()])
        assert depth.max() <= 10


def test_same_seed_same_data_other_seed_other_data(data):
    again = ks.datasets.listops(300, max_length=256, seed=3)
    np.testing.assert_array_equal(again.inputs, data.inputs)
    assert not np.array_equal(ks.datasets.listops(300, max_length=256, seed=4).inputs, data.inputs)


def test_every_answer_occurs():
    assert set(ks.datasets.listops(400, max_length=128, seed=0).labels) == set(range(10))


def test_bad_min_length_is_named():
    with pytest.raises(ValueError, match="`min_length`"):
        ks.datasets.listops(4, max_length=64, min_length=64)
