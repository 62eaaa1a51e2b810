"""`to_tflite_decoder` and `generate_tflite`: one file with `prefill` and `decode`, verified against the Keras model.

References: the Keras `SparseCausalLM` the file was made from (its greedy tokens and its logits at every step,
far past the window), and the file's own shapes (no input grows with the position).
"""

import keras
import numpy as np
import pytest

import converters
import keras_sparse as ks
from converters.tflite_decoder import LiteRTDecoder
from tests.converters.conftest import language_model, text, train_lm


@pytest.fixture(scope="module")
def trained_wide():
    """Feed-forward kernels of 16 x 64 = 1024 weights: the converter's dynamic mode quantizes no smaller tensor
    (the default model's files in dynamic mode are float32 files)."""
    return train_lm(language_model(intermediate_dim=64))


@pytest.fixture(
    params=["sinusoidal", *(pytest.param(encoding, marks=pytest.mark.slow) for encoding in ("rotary", "alibi"))]
)
def trained(request, trained_lm):
    """The trained window-with-sinks model, with each position encoding (the session's for sinusoidal)."""
    return trained_lm if request.param == "sinusoidal" else train_lm(language_model(position_encoding=request.param))


@pytest.mark.parametrize(
    "position_encoding", [pytest.param("sinusoidal", marks=pytest.mark.slow), "rotary", "alibi"]
)  # sinusoidal (the old default) is also exported by the Micro bundle tests
def test_float32_file_generates_keras_tokens_far_past_the_window(tmp_path, position_encoding):
    lm = language_model(position_encoding=position_encoding)
    lm.token_embedding.embeddings.assign(lm.token_embedding.embeddings * 8.0)  # no near-tie argmaxes
    result = converters.to_tflite_decoder(lm, tmp_path / "lm.tflite", prefill_length=4, verification_steps=40)
    assert result.argmax_agreement == 1.0 and result.max_relative_error < 1e-4
    assert not [op for op in result.ops if op.startswith("Flex") or op == "CUSTOM"]
    layout = lm.cache_layout("bounded")
    assert result.cache_shape == (1, 2, 2, layout.length, 2, 8)  # 2 sinks + 5 window slots, whatever the position
    decoder = LiteRTDecoder(tmp_path / "lm.tflite")
    for runner in (decoder.prefill, decoder.decode):
        shapes = {name: tuple(detail["shape"]) for name, detail in runner.get_input_details().items()}
        assert shapes["cache"] == result.cache_shape and shapes["position"] == (1,)
    assert decoder.max_positions == 0
    prompt = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])  # 2 prefill chunks of 4, then 2 single steps
    expected = lm.generate(prompt, max_new_tokens=60, prefill_length=4)
    np.testing.assert_array_equal(converters.generate_tflite(tmp_path / "lm.tflite", prompt, 60), expected)
    sampler = ks.models.Sampler(temperature=1.5, top_k=4, seed=1)
    np.testing.assert_array_equal(
        converters.generate_tflite(tmp_path / "lm.tflite", prompt, 30, sampler=sampler),
        lm.generate(prompt, 30, sampler=sampler, prefill_length=4),
    )


def test_int8_file_follows_a_trained_model(trained, tmp_path):
    data = text(16, 64, seed=1)
    result = converters.to_tflite_decoder(
        trained, tmp_path / "lm_int8.tflite", quantization="int8", representative_data=data, prefill_length=8
    )
    assert result.argmax_agreement >= 0.99 and result.max_relative_error <= 0.25
    assert "QUANTIZE" in result.ops and "FULLY_CONNECTED" in result.ops
    decoder = LiteRTDecoder(tmp_path / "lm_int8.tflite")
    dtypes = {name: detail["dtype"] for name, detail in decoder.decode.get_input_details().items()}
    assert dtypes["cache"] == np.float32  # LiteRT.js refuses int8 inputs and outputs
    prompt = data[3, :12]
    tokens = converters.generate_tflite(tmp_path / "lm_int8.tflite", prompt, 40)
    assert (tokens == trained.generate(prompt, 40, prefill_length=8)).mean() >= 0.95


@pytest.mark.parametrize(
    "quantization, weight_dtype", [("float16", np.float16), pytest.param("dynamic", np.int8, marks=pytest.mark.slow)]
)
def test_float16_and_dynamic_files_follow_a_trained_model(request, tmp_path, quantization, weight_dtype):
    model = request.getfixturevalue("trained_lm" if quantization == "float16" else "trained_wide")
    path = tmp_path / f"lm_{quantization}.tflite"
    result = converters.to_tflite_decoder(model, path, quantization=quantization, prefill_length=8)
    bound = converters.MODES[quantization]  # measured: float16 7e-4 to 1e-3, dynamic 5e-3 to 1.1e-2, 100% tokens
    assert result.max_relative_error <= bound.max_relative_error and result.argmax_agreement == 1.0
    assert result.max_relative_error > 1e-5  # the weights were rounded: not a float32 file
    assert not [op for op in result.ops if op.startswith("Flex") or op == "CUSTOM"]
    decoder = LiteRTDecoder(path)
    assert weight_dtype in {detail["dtype"] for detail in decoder.interpreter.get_tensor_details()}
    dtypes = {name: detail["dtype"] for name, detail in decoder.decode.get_input_details().items()}
    assert dtypes["cache"] == np.float32
    prompt = np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2])  # 40 tokens: past the ring of 2 + 5 slots
    np.testing.assert_array_equal(
        converters.generate_tflite(path, prompt, 40), model.generate(prompt, 40, prefill_length=8)
    )


def test_a_pattern_that_cannot_be_bounded_gets_a_full_cache_of_max_length(tmp_path):
    lm = language_model(ks.patterns.Dense())
    lm.token_embedding.embeddings.assign(lm.token_embedding.embeddings * 8.0)
    with pytest.raises(ValueError, match="argument `max_length`"):
        converters.to_tflite_decoder(lm, tmp_path / "dense.tflite", cache="full")
    result = converters.to_tflite_decoder(lm, tmp_path / "dense.tflite", cache="full", max_length=40, prefill_length=4)
    assert result.cache_shape[3] == 40 and result.argmax_agreement == 1.0
    prompt = np.array([1, 2, 3, 4, 5])
    np.testing.assert_array_equal(
        converters.generate_tflite(tmp_path / "dense.tflite", prompt, 35),
        lm.generate(prompt, 35, cache="full", prefill_length=4),
    )
    with pytest.raises(ValueError, match=r"argument `max_new_tokens`.*at most 35"):
        converters.generate_tflite(tmp_path / "dense.tflite", prompt, 36)


def test_bad_input_names_the_argument(tmp_path):
    lm = language_model()
    with pytest.raises(ValueError, match="argument `representative_data`"):
        converters.to_tflite_decoder(lm, tmp_path / "a.tflite", quantization="int8")
    with pytest.raises(ValueError, match="argument `quantization`"):
        converters.to_tflite_decoder(lm, tmp_path / "a.tflite", quantization="int4")
    with pytest.raises(ValueError, match="argument `lm`"):
        converters.to_tflite_decoder(keras.Sequential([keras.layers.Dense(2)]), tmp_path / "a.tflite")
    with pytest.raises(ValueError, match="argument `representative_data`"):
        converters.to_tflite_decoder(lm, tmp_path / "a.tflite", representative_data=np.ones((4, 8)))
    path = tmp_path / "lm.tflite"
    converters.to_tflite_decoder(lm, path, prefill_length=4, verification_steps=4)
    with pytest.raises(FileExistsError):
        converters.to_tflite_decoder(lm, path, prefill_length=4, verification_steps=4)
    with pytest.raises(ValueError, match="argument `prompt_ids`.*one prompt"):
        converters.generate_tflite(path, np.ones((2, 3), "int32"), 4)
    with pytest.raises(ValueError, match="argument `max_new_tokens`"):
        converters.generate_tflite(path, [1, 2], 0)
    with pytest.raises(FileNotFoundError, match="`path` .*missing.tflite does not exist"):
        converters.generate_tflite(tmp_path / "missing.tflite", [1, 2], 4)
    with pytest.raises(IsADirectoryError, match="`path` .* is a folder"):
        converters.generate_tflite(tmp_path, [1, 2], 4)
    data = np.full((4, 20), 10_000, "int32")
    with pytest.raises(ValueError, match=r"argument `representative_data`.*ids from 10000"):
        converters.to_tflite_decoder(lm, tmp_path / "b.tflite", "int8", representative_data=data)
    with pytest.raises(ValueError, match=r"argument `verification_prompt`.*token ids in"):
        converters.to_tflite_decoder(lm, tmp_path / "b.tflite", verification_prompt=[10_000])
    with pytest.raises(ValueError, match=r"argument `verification_prompt`.*one prompt"):
        converters.to_tflite_decoder(lm, tmp_path / "b.tflite", verification_prompt=np.ones((2, 3), "int32"))
    with pytest.raises(ValueError, match="argument `sampler`"):
        converters.generate_tflite(path, [1, 2], 3, sampler=ks.models.Sampler(), deterministic=True)
    with pytest.raises(ValueError, match="argument `model`"):
        LiteRTDecoder(_plain_file(tmp_path))


def _plain_file(tmp_path):
    x = keras.Input((4,))
    converters.to_tflite(keras.Model(x, keras.layers.Dense(2)(x)), tmp_path / "plain.tflite")
    return tmp_path / "plain.tflite"


def test_int8_rotary_file_follows_keras_far_past_the_calibrated_positions(tmp_path):
    """Rotary angles (position x frequency) are not quantized: calibrated on positions below 16, the file
    follows Keras's logits to position 200 (an int8 angle is clipped to the calibrated range and, within
    it, rounded to 1/256 of that range)."""
    lm = train_lm(language_model(position_encoding="rotary"))
    path = tmp_path / "rotary_int8.tflite"
    converters.to_tflite_decoder(
        lm, path, "int8", representative_data=text(8, 16, seed=1), prefill_length=8, verification_steps=8
    )
    tokens = text(1, 200, seed=2)
    expected = keras.ops.convert_to_numpy(lm(tokens))[0]
    decoder = LiteRTDecoder(path)
    got = np.concatenate([decoder(tokens[:, t : t + 1], t)[0] for t in range(tokens.shape[1])])
    far = slice(100, None)
    error = np.abs(got[far] - expected[far]).max() / np.abs(expected[far]).max()
    assert error <= converters.tflite_decoder.INT8_MAX_RELATIVE_ERROR, error
    assert (got[far].argmax(-1) == expected[far].argmax(-1)).mean() >= 0.9
