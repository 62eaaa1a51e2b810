"""`SparseCausalLM`: training, `.keras` files, and generation that equals teacher forcing far past the window.

Reference for decoding: the same model's full forward pass over the generated sequence (the sparse
square kernels, no cache): each greedy token must be the argmax of the logits at the previous position,
and each step's logits must equal that row.
"""

import warnings

import keras
import numpy as np
import pytest

import keras_sparse as ks
from tests.reference import relative_error

VOCAB = 23
WINDOW_AND_SINKS = ks.patterns.SlidingWindow(window_size=8, global_tokens=(0, 1), block_size=8)
ENCODINGS = ("sinusoidal", "rotary", "alibi")


def language_model(pattern=WINDOW_AND_SINKS, **kwargs):
    keras.utils.set_random_seed(0)
    options = dict(vocab_size=VOCAB, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32, pattern=pattern)
    lm = ks.models.SparseCausalLM(**{**options, **kwargs})
    lm(np.zeros((1, 16), "int32"))
    # larger embeddings spread the logits, so no argmax is a near tie
    lm.token_embedding.embeddings.assign(lm.token_embedding.embeddings * 8.0)
    return lm


@pytest.mark.parametrize("position_encoding", ENCODINGS)
def test_generation_with_a_ring_buffer_equals_teacher_forcing_far_past_the_window(position_encoding):
    lm = language_model(position_encoding=position_encoding)
    prompt = np.array([[3, 1, 4, 1, 5, 9, 2], [2, 7, 1, 8, 2, 8, 1]])
    tokens = lm.generate(prompt, max_new_tokens=70, prefill_length=4)  # ring of 2 + 5 slots, 77 positions
    assert tokens.shape == (2, 77)
    np.testing.assert_array_equal(tokens[:, :7], prompt)
    forward = lm(tokens[:, :-1]).numpy()
    np.testing.assert_array_equal(tokens[:, 7:], forward[:, 6:].argmax(-1))


@pytest.mark.parametrize("position_encoding", ENCODINGS)
def test_each_step_s_logits_equal_the_full_forward_pass(position_encoding):
    lm = language_model(position_encoding=position_encoding)
    tokens = np.random.default_rng(1).integers(0, VOCAB, size=(1, 50)).astype("int32")
    layout = lm.cache_layout("bounded")
    cache = lm.empty_cache(1, layout.length)
    steps = []
    for position in range(50):
        logits, cache = lm.call_with_cache(tokens[:, position : position + 1], cache, position, bounded=True)
        steps.append(logits.numpy())
    assert relative_error(np.concatenate(steps, axis=1), lm(tokens).numpy(), ...) < 1e-5


def test_alibi_cut_drops_the_same_far_sinks_in_the_ring_buffer_as_in_the_sequence_kernels(monkeypatch):
    # a coarse cut (weight factor 0.5) ends head 0's reach at 11 tokens: sinks leave it, the ring buffer must agree
    monkeypatch.setattr(ks.models.causal_lm, "ALIBI_THRESHOLD", 0.5)
    lm = language_model(position_encoding="alibi")
    assert [head.max_distance for head in lm.attention_pattern.second.patterns] == [11, 177]
    tokens = np.random.default_rng(2).integers(0, VOCAB, size=(1, 40)).astype("int32")
    decoder = lm.decoder(1, "bounded")
    steps = np.concatenate([decoder(tokens[:, p : p + 1], p) for p in range(40)], axis=1)
    assert relative_error(steps, lm(tokens).numpy(), ...) < 1e-5


def test_rotary_and_alibi_scores_depend_only_on_offsets():
    # the reference: a shifted sequence under a window without sinks sees the same offsets, so the same logits
    window = ks.patterns.SlidingWindow(window_size=8, block_size=8)
    tokens = np.random.default_rng(3).integers(0, VOCAB, size=(1, 48)).astype("int32")
    for position_encoding in ("rotary", "alibi"):
        lm = language_model(window, position_encoding=position_encoding)
        whole, shifted = lm(tokens).numpy(), lm(tokens[:, 16:]).numpy()
        assert relative_error(shifted[:, 8:], whole[:, 24:], ...) < 1e-4  # rows whose window lies inside both
    lm = language_model(window, position_encoding="sinusoidal")  # absolute positions
    assert relative_error(lm(tokens[:, 16:]).numpy()[:, 8:], lm(tokens).numpy()[:, 24:], ...) > 1e-2


BIG_BIRD = ks.patterns.BigBird(block_size=8, num_global_blocks=1, num_random_blocks=1)


@pytest.mark.parametrize(
    "pattern, position_encoding",
    [
        *(pytest.param(ks.patterns.Dense(), encoding, id=f"dense-{encoding}") for encoding in ENCODINGS),
        pytest.param(BIG_BIRD, "rotary", id="bigbird-rotary"),
        *(
            pytest.param(BIG_BIRD, encoding, marks=pytest.mark.slow, id=f"bigbird-{encoding}")
            for encoding in ("sinusoidal", "alibi")
        ),
    ],
)
def test_patterns_that_cannot_be_bounded_decode_with_a_full_cache_and_say_so(pattern, position_encoding):
    lm = language_model(pattern, position_encoding=position_encoding)
    prompt = np.array([[5, 6, 7, 8, 9]])
    with pytest.warns(UserWarning, match="decodes with a full cache, growing with every position"):
        tokens = lm.generate(prompt, max_new_tokens=30, prefill_length=4)
    np.testing.assert_array_equal(tokens[:, 5:], lm(tokens[:, :-1]).numpy()[:, 4:].argmax(-1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm.generate(prompt, max_new_tokens=2, cache="full")
    with pytest.raises(ValueError, match="argument `pattern`"):
        lm.generate(prompt, max_new_tokens=2, cache="bounded")


def test_prefill_in_chunks_gives_the_tokens_of_one_token_steps():
    lm = language_model()
    prompt = np.arange(1, 22)[None] % VOCAB
    chunked = lm.generate(prompt, max_new_tokens=10, prefill_length=8)  # 2 chunks of 8, then 5 single steps
    single = lm.generate(prompt, max_new_tokens=10, prefill_length=1)
    np.testing.assert_array_equal(chunked, single)


def test_samplers_are_seeded_and_restricted():
    lm = language_model()
    prompt = np.array([1, 2, 3])
    greedy = lm.generate(prompt, max_new_tokens=12)
    assert (lm.generate(prompt, 12, sampler=ks.models.Sampler(top_k=1, seed=3)) == greedy).all()
    sampler = ks.models.Sampler(temperature=2.0, seed=7)
    first, second = lm.generate(prompt, 12, sampler=sampler), lm.generate(prompt, 12, sampler=sampler)
    np.testing.assert_array_equal(first, second)
    assert (first != greedy).any()  # a hot sampler leaves the argmax path
    draw = ks.models.Sampler(top_k=2, seed=0).drawer()
    drawn = {int(draw(np.array([[0.0, 3.0, 2.5, 1.0]]))[0]) for _ in range(200)}
    assert drawn == {1, 2}


@pytest.mark.parametrize(
    "position_encoding", ["rotary", *(pytest.param(e, marks=pytest.mark.slow) for e in ("sinusoidal", "alibi"))]
)
def test_fit_lowers_the_loss_and_the_keras_file_loads_without_custom_objects(tmp_path, position_encoding):
    lm = language_model(position_encoding=position_encoding)
    sequence = np.tile(np.arange(10), 40)
    x = np.stack([sequence[i : i + 32] for i in range(0, 320, 5)]).astype("int32")
    y = np.stack([sequence[i + 1 : i + 33] for i in range(0, 320, 5)]).astype("int32")
    lm.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = lm.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    path = tmp_path / "lm.keras"
    lm.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ks.models.SparseCausalLM) and loaded.pattern == lm.pattern
    assert loaded.position_encoding == position_encoding
    np.testing.assert_allclose(loaded(x[:2]).numpy(), lm(x[:2]).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(loaded.generate(x[0, :5], 20), lm.generate(x[0, :5], 20))


@pytest.mark.parametrize("position_encoding", ENCODINGS)
def test_untied_head_and_config_round_trip(position_encoding):
    lm = language_model(tie_embeddings=False, position_encoding=position_encoding)
    again = ks.models.SparseCausalLM.from_config(lm.get_config())
    assert again.position_encoding == position_encoding
    again(np.zeros((1, 16), "int32"))
    again.set_weights(lm.get_weights())
    tokens = np.arange(12)[None]
    np.testing.assert_allclose(again(tokens).numpy(), lm(tokens).numpy(), rtol=1e-6)
    assert again.output_head is not None
    assert ks.models.SparseCausalLM(VOCAB, 1, 16, 2, 8).position_encoding == "rotary"  # the measured default


def test_configs_without_a_position_encoding_load_with_sinusoidal_positions():
    lm = language_model(position_encoding="sinusoidal")
    config = lm.get_config()
    del config["position_encoding"]  # a model saved before the option existed
    again = ks.models.SparseCausalLM.from_config(config)
    again(np.zeros((1, 16), "int32"))
    again.set_weights(lm.get_weights())
    tokens = np.arange(12)[None]
    np.testing.assert_allclose(again(tokens).numpy(), lm(tokens).numpy(), rtol=1e-6)


def test_bad_input_names_the_argument():
    lm = language_model()
    with pytest.raises(ValueError, match="argument `max_new_tokens`"):
        lm.generate([1, 2], max_new_tokens=0)
    with pytest.raises(ValueError, match="argument `sampler`.*seeded"):
        lm.generate([1, 2], 3, sampler=ks.models.Sampler(temperature=0.7), deterministic=True)
    with pytest.raises(ValueError, match="argument `sampler`"):
        lm.generate([1, 2], 3, sampler="beam")
    with pytest.raises(ValueError, match=r"argument `prompt_ids`.*\[0, 23\)"):
        lm.generate([1, 99], 3)
    with pytest.raises(ValueError, match="argument `prompt_ids`"):
        lm.generate(np.zeros((1, 0), "int32"), 3)
    with pytest.raises(ValueError, match="argument `cache`"):
        lm.call_with_cache(np.zeros((1, 1), "int32"), np.zeros((1, 2, 2, 7, 2, 4), "float32"), 0, bounded=False)
    with pytest.raises(ValueError, match=r"argument `cache`.*ring-buffer cache"):
        lm.call_with_cache(np.zeros((1, 1), "int32"), lm.empty_cache(1, 9), 0, bounded=True)
    with pytest.raises(ValueError, match="argument `num_heads`"):
        ks.models.SparseCausalLM(VOCAB, 1, hidden_dim=10, num_heads=3, intermediate_dim=8)
    with pytest.raises(ValueError, match="argument `cache`"):
        lm.generate([1, 2], 3, cache="ring")
    with pytest.raises(ValueError, match="argument `position_encoding`"):
        ks.models.SparseCausalLM(VOCAB, 1, 16, 2, 8, position_encoding="learned")


def test_a_second_length_through_fit_and_predict_explains_keras_retracing_and_the_fix_works():
    lm = ks.models.SparseCausalLM(32, 1, 8, 2, 16, pattern=ks.patterns.SlidingWindow(5, global_tokens=(0,)))
    lm.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    short, long = np.ones((4, 16), "int32"), np.ones((4, 32), "int32")
    lm.fit(short, short, verbose=0)
    with pytest.raises(ValueError, match=r"reduce_retracing.*lm\.train_function = None"):
        lm.fit(long, long, verbose=0)
    lm.train_function = None
    lm.fit(long, long, verbose=0)
    lm.predict(short, verbose=0)
    lm.predict_function = None
    assert lm.predict(long, verbose=0).shape == (4, 32, 32)


def test_non_finite_logits_stop_generation_instead_of_drawing_token_zero():
    lm = ks.models.SparseCausalLM(32, 1, 8, 2, 16, pattern=ks.patterns.SlidingWindow(5, global_tokens=(0,)))
    lm(np.zeros((1, 8), "int32"))
    weights = lm.get_weights()
    weights[3] = weights[3] * np.nan
    lm.set_weights(weights)
    with pytest.raises(FloatingPointError, match="NaN or infinite logits at position 2"):
        lm.generate(np.array([3, 4, 5]), 5)
