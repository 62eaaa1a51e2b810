"""Vocabularies save beside models; tf.data pipelines carry padding masks."""

import numpy as np
import pytest

import keras_sparse as ks


def test_save_load_round_trip_and_no_silent_overwrite(tmp_path):
    vocabulary = ks.datasets.listops(1, 64).vocabulary
    vocabulary.save(tmp_path / "vocab.json")
    assert ks.datasets.Vocabulary.load(tmp_path / "vocab.json") == vocabulary
    with pytest.raises(FileExistsError, match="overwrite=True"):
        vocabulary.save(tmp_path / "vocab.json")
    vocabulary.save(tmp_path / "vocab.json", overwrite=True)


@pytest.mark.parametrize(
    "text, seq_len, match",
    [("[MAX 1 x ]", 16, "unknown tokens \\['x'\\]"), ("[MAX 1 2 ]", 4, "seq_len >= 5")],
)
def test_encode_errors_name_the_problem(text, seq_len, match):
    with pytest.raises(ValueError, match=match):
        ks.datasets.listops(1, 64).vocabulary.encode(text, seq_len)


def test_dataset_batches_with_padding_mask():
    data = ks.datasets.listops(10, 64, seed=0)
    features, labels = next(iter(ks.datasets.as_dataset(data, batch_size=4, with_padding_mask=True)))
    np.testing.assert_array_equal(features["padding_mask"].numpy(), data.inputs[:4] != 0)
    np.testing.assert_array_equal(labels.numpy(), data.labels[:4])
    shuffled = [y.numpy() for _, y in ks.datasets.as_dataset(data, batch_size=10, shuffle_seed=0)]
    assert sorted(shuffled[0].tolist()) == sorted(data.labels.tolist())
