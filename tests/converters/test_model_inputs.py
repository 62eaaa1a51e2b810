"""converters.model_inputs: a model's inputs at batch 1, and data for them checked and named, never passed on to
TFLite's internals: every problem is a ValueError naming the argument, the input, what was expected and received."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks
from converters.model_inputs import ModelInput, as_samples, model_inputs, pack, read_samples
from tests.converters.conftest import SEQ_LEN, VOCAB, dict_input_data, dict_input_model

FEATURES = ModelInput("x", (1, 8, 4), np.dtype("float32"))
TOKENS = ModelInput("tokens", (1, 8), np.dtype("int32"), id_range=(0, 16), embedding="token_embedding")


def test_a_dict_input_model_has_named_inputs_in_keras_order():
    model = dict_input_model()
    inputs = model_inputs(model)
    assert [i.name for i in inputs] == ["padding_mask", "segment_ids", "token_ids"]  # keras.tree.flatten's order
    assert all(i.shape == (1, SEQ_LEN) and i.dtype == np.int32 for i in inputs)
    token_ids = inputs[2]
    assert token_ids.id_range == (0, VOCAB) and token_ids.embedding == "token_embedding"
    assert inputs[1].id_range == (0, 2)
    arrays = [np.zeros(i.shape, i.dtype) for i in inputs]
    assert set(pack(model, arrays)) == {"token_ids", "padding_mask", "segment_ids"}


def test_data_forms_give_the_same_samples():
    model = dict_input_model()
    inputs = model_inputs(model)
    data = dict_input_data(6, seed=0)
    as_list = [data[i.name] for i in inputs]
    forms = {
        "dict": data,
        "list": as_list,
        "dataset of dicts": tf.data.Dataset.from_tensor_slices(data).batch(4),
        "generator of single dicts": ({k: v[n] for k, v in data.items()} for n in range(6)),
        "int64 arrays": {k: v.astype("int64") for k, v in data.items()},
    }
    reference = as_samples(data, inputs)
    for form, value in forms.items():
        samples = as_samples(value, inputs)
        assert len(samples) == 6, form
        for got, want in zip(samples, reference, strict=True):
            assert all(g.dtype == np.int32 and np.array_equal(g, w) for g, w in zip(got, want, strict=True)), form


def test_float64_is_cast_to_float32():
    samples = as_samples(np.ones((3, 8, 4)), [FEATURES])
    assert samples[0][0].dtype == np.float32 and samples[0][0].shape == (1, 8, 4)


@pytest.mark.parametrize(
    "data, words",
    [
        (np.zeros((0, 8, 4), "float32"), "holds no samples"),
        ([], "holds no samples"),
        (iter([]), "holds no samples"),
        (tf.data.Dataset.from_tensor_slices(np.zeros((0, 8, 4), "float32")), "holds no samples"),
        (np.zeros((3, 9, 4)), r"shape \(8, 4\).*received an array of shape \(3, 9, 4\)"),
        (np.zeros((3, 8, 5)), r"shape \(8, 4\).*received an array of shape \(3, 8, 5\)"),
        (np.zeros((3, 8)), r"received an array of shape \(3, 8\)"),
        (np.full((3, 8, 4), np.nan), "NaN or infinite"),
        (np.full((3, 8, 4), np.inf), "NaN or infinite"),
        (np.array([["a"] * 4] * 8), "takes real numbers.*dtype <U1"),
        ([np.zeros((3, 8, 4)), np.zeros((3, 8, 4))], "hold 2 arrays, but the model has 1 inputs"),
        ({"y": np.zeros((3, 8, 4))}, r"input names \['x'\]; missing \['x'\]; unknown \['y'\]"),
        (42, "expected an array"),
        ("data.npy", "expected an array"),
    ],
)
def test_bad_float_data_is_named(data, words):
    with pytest.raises(ValueError, match="`verification_data`.*" + words):
        as_samples(data, [FEATURES], name="verification_data")


@pytest.mark.parametrize(
    "data, words",
    [
        (
            np.full((2, 8), 16),
            r"values in \[0, 16\) \(the embedding `token_embedding`\); received values from 16 to 16",
        ),
        (np.full((2, 8), -1), r"values in \[0, 16\).*from -1"),
        (np.full((2, 8), 2**40, "int64"), ".*received values from 1099511627776"),
        (np.ones((2, 8), "float64"), "integers \\(int32\\); received an array of dtype float64"),
    ],
)
def test_bad_token_data_is_named(data, words):
    with pytest.raises(ValueError, match="`representative_data`: input `tokens` takes " + words):
        as_samples(data, [TOKENS])


def test_int64_must_fit_an_int32_input():
    ids = ModelInput("ids", (1, 8), np.dtype("int32"))
    assert as_samples(np.full((2, 8), 2**31 - 1, "int64"), [ids])[0][0].dtype == np.int32
    with pytest.raises(
        ValueError, match=r"takes values in \[-2147483648, 2147483648\) \(int32\); received .* 2147483648"
    ):
        as_samples(np.full((2, 8), 2**31, "int64"), [ids])


def test_a_generator_raising_midway_is_named():
    def generator():
        yield np.zeros((8, 4), "float32")
        raise OSError("the disk went away")

    with pytest.raises(ValueError, match="`representative_data`: reading it raised OSError after 1 samples: the disk"):
        as_samples(generator(), [FEATURES])


def test_keras_embedding_accepts_the_negative_ids_it_wraps():
    tokens = keras.Input((8,), dtype="int32")
    model = keras.Model(tokens, keras.layers.Embedding(10, 4)(tokens))
    (model_input,) = model_inputs(model)
    assert model_input.id_range == (-10, 10)
    assert len(as_samples(np.full((2, 8), -10), [model_input])) == 2


@pytest.mark.parametrize("seq_len", [0, -1, 2.5, True, "8"])
def test_seq_len_must_be_a_positive_integer(seq_len):
    x = keras.Input((None, 4))
    with pytest.raises(ValueError, match="`seq_len`"):
        model_inputs(keras.Model(x, x), seq_len)


def test_a_model_without_known_inputs_is_named():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="`model`: its inputs are unknown"):
        model_inputs(Subclassed())
    with pytest.raises(TypeError, match="`model`"):
        model_inputs(ks.patterns.Dense())


def test_read_samples_says_how_many_the_data_held():
    batch = np.zeros((100, 8, 4), "float32")
    samples, given = read_samples(batch, [FEATURES], limit=64)
    assert (len(samples), given) == (64, 100)
    assert read_samples((sample for sample in batch[:10]), [FEATURES], limit=64)[1] == 10
    endless = (np.zeros((8, 4), "float32") for _ in iter(int, 1))
    assert read_samples(endless, [FEATURES], limit=64)[1] is None  # more than were read
