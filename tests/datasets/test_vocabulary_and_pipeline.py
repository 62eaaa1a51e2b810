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


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "it is empty"),
        (b'{"tokens": ["<pad>", "<cls>", "[MAX"', "not valid JSON \\(or it was cut short\\)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text \\(byte 0 is 0x89\\)"),
        (b'["<pad>", "<cls>", "a"]', 'a JSON list, not \\{"tokens": \\[...\\]\\}'),
        (b'{"tokens": "<pad> <cls> a"}', 'a JSON dict, not \\{"tokens": \\[...\\]\\}'),
        (b'{"tokens": ["a", "b"]}', "must start with '<pad>'"),
        (b'{"tokens": ["<pad>", "<cls>", "a"], "pad_id": 3}', "pad_id 0"),
        (b'{"tokens": ["<pad>", "<cls>", 7, null]}', "tokens containing \\[7, None\\]"),
        (b'{"tokens": ["<pad>", "<cls>", "a b"]}', "without whitespace"),
        (b'{"tokens": ["<pad>", "<cls>", "a", "a"]}', "repeating \\['a'\\]"),
    ],
)
def test_load_names_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "vocab.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"{path} is not a keras_sparse vocabulary.*{problem}") as error:
        ks.datasets.Vocabulary.load(path)
    assert error.value.__context__ is None or error.value.__suppress_context__  # no JSON traceback above it


def test_decode_refuses_unknown_and_non_integer_ids():
    vocabulary = ks.datasets.Vocabulary(["a", "b"])
    assert vocabulary.decode([1, 2, 3, 0]) == "a b" and vocabulary.decode([]) == ""
    with pytest.raises(ValueError, match=r"`ids`, expected ids in \[0, 4\).*Received: ids \[-1, 4, 9\]"):
        vocabulary.decode([1, 4, 9, -1, 2])
    with pytest.raises(ValueError, match="`ids`, expected integer token ids"):
        vocabulary.decode([1.0, 2.0])


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: ks.datasets.Vocabulary("abc"), "tokens"),
        (lambda: ks.datasets.Vocabulary([1, 2]), "tokens"),
        (lambda: ks.datasets.Vocabulary(["<cls>"]), "tokens"),
        (lambda: ks.datasets.Vocabulary([""]), "tokens"),
        (lambda: ks.datasets.Vocabulary(["a"]).encode(5, 8), "text"),
        (lambda: ks.datasets.Vocabulary(["a"]).encode("a", 8.0), "seq_len"),
        (lambda: ks.datasets.Vocabulary(["a"]).save("unused.json", overwrite="no"), "overwrite"),
        (lambda: ks.datasets.as_dataset(ks.datasets.listops(2, 64), batch_size=0), "batch_size"),
        (lambda: ks.datasets.as_dataset(ks.datasets.listops(2, 64), with_padding_mask="no"), "with_padding_mask"),
        (lambda: ks.datasets.as_dataset(ks.datasets.listops(2, 64), shuffle_seed=-1), "shuffle_seed"),
        (lambda: ks.datasets.as_dataset((np.zeros((2, 8)), np.zeros(2))), "data"),
        (lambda: ks.datasets.far_retrieval(2, seq_len=np.float32(64)), "seq_len"),
        (lambda: ks.datasets.far_retrieval(-1), "num_examples"),
        (lambda: ks.datasets.far_retrieval(0, 256), "num_examples"),
        (lambda: ks.datasets.listops(0, 64), "num_examples"),
    ],
)
def test_bad_arguments_are_named(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()


def test_numpy_scalars():
    data = ks.datasets.far_retrieval(np.int64(3), seq_len=np.int32(32), seed=np.int64(1))
    np.testing.assert_array_equal(data.inputs, ks.datasets.far_retrieval(3, 32, seed=1).inputs)
    batches = list(ks.datasets.as_dataset(ks.datasets.listops(3, 64), batch_size=np.int64(2), shuffle_seed=np.int8(0)))
    assert [len(labels) for _, labels in batches] == [2, 1]
