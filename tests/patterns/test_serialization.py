"""Patterns are plain data: config round trips, equality, hashing, Keras serialization."""

import json

import keras
import pytest

import keras_sparse as ks
from tests.patterns.test_definitions import PATTERNS


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: type(p).__name__)
def test_keras_serialization_round_trip_through_json(pattern):
    text = json.dumps(keras.saving.serialize_keras_object(pattern))
    restored = keras.saving.deserialize_keras_object(json.loads(text))
    assert restored == pattern
    assert hash(restored) == hash(pattern)
    assert (restored.mask(40) == pattern.mask(40)).all()


def test_global_tokens_are_normalised_so_equal_patterns_compare_equal():
    assert ks.patterns.SlidingWindow(8, global_tokens=[5, 0, 5]) == ks.patterns.SlidingWindow(8, global_tokens=(0, 5))


def test_patterns_are_immutable():
    pattern = ks.patterns.SlidingWindow(8)
    with pytest.raises(AttributeError):
        pattern.window_size = 4
