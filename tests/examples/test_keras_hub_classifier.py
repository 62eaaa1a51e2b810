"""The keras-hub recipe of docs/keras-hub.md at a tiny size: it trains, exports int8 (verified), runs in LiteRT."""

import sys

import pytest

sys.path.insert(0, "examples")

import keras_hub_classifier  # noqa: E402


@pytest.mark.slow
def test_the_keras_hub_classifier_recipe_runs_end_to_end():
    summary = keras_hub_classifier.main(
        ["--seq-len", "64", "--window", "16", "--train", "32", "--test", "16", "--epochs", "1"]
    )
    assert 0.0 <= summary["litert_int8_accuracy"] <= 1.0 and summary["file_kib"] > 0
