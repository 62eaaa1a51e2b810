"""`SparseCausalLM` under Keras's execution settings: mixed precision, XLA, tf.function, MirroredStrategy.

References: the same model trained and called in float32 eagerly on one device (the same losses, weights and
logits), and its own full forward pass for generation (each greedy token is the argmax of the previous row).
Where a setting cannot work (`generate` traced, a length unknown when traced), the error names it and the fix.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks
from tests.models.test_causal_lm import WINDOW_AND_SINKS
from tests.reference import relative_error
from tests.two_devices import run_on_two_devices

VOCAB = 12


def language_model():
    keras.utils.set_random_seed(0)
    return ks.models.SparseCausalLM(
        vocab_size=VOCAB, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, pattern=WINDOW_AND_SINKS
    )


def counting_text(count: int = 16, length: int = 9) -> np.ndarray:
    """Each token is the previous one plus 1 (or 2, one time in ten), mod VOCAB."""
    steps = np.random.default_rng(0).choice([1, 2], p=[0.9, 0.1], size=(count, length))
    return (np.cumsum(steps, axis=1) % VOCAB).astype("int32")


def fit(lm, **compile_options) -> list[float]:
    """Two epochs of teacher forcing (2 steps of batch 8 each); the losses."""
    data = counting_text()
    lm.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True), **compile_options
    )
    return lm.fit(data[:, :-1], data[:, 1:], epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]


def assert_greedy_tokens_follow_the_forward_pass(lm, max_new_tokens: int = 30):
    prompt = np.array([[1, 2, 3], [5, 6, 8]])
    tokens = lm.generate(prompt, max_new_tokens, prefill_length=2)  # past the ring of 2 + 5 slots, 4 times over
    forward = np.asarray(lm(tokens[:, :-1]), "float32")
    np.testing.assert_array_equal(tokens[:, 3:], forward[:, 2:].argmax(-1))


@pytest.fixture(scope="module")
def float32_losses():
    return fit(language_model())


@pytest.fixture
def policy(request):
    keras.config.set_dtype_policy(request.param)
    yield request.param.removeprefix("mixed_")
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize(
    "policy", ["mixed_float16", pytest.param("mixed_bfloat16", marks=pytest.mark.slow)], indirect=True
)
def test_mixed_precision_trains_computes_in_its_dtype_and_generates_its_argmax(policy, float32_losses):
    lm = language_model()
    losses = fit(lm)
    assert np.isfinite(losses).all() and losses[1] < losses[0]
    np.testing.assert_allclose(losses, float32_losses, rtol=2e-2)  # bfloat16 rounding: 8 significant bits
    assert lm.token_embedding.embeddings.dtype == "float32"  # variables stay float32, as Keras's layers keep them
    assert lm(counting_text(2)).dtype == policy  # logits in the compute dtype, as Keras's Dense gives them
    assert_greedy_tokens_follow_the_forward_pass(lm)


@pytest.mark.slow  # XLA compiles the train step: 25 s on the shared machine
def test_fit_with_jit_compile_equals_fit_without(float32_losses):
    lm = language_model()
    np.testing.assert_allclose(fit(lm, jit_compile=True), float32_losses, rtol=1e-5)
    assert_greedy_tokens_follow_the_forward_pass(lm)


def test_call_and_call_with_cache_under_tf_function_and_xla_equal_eager():
    lm = language_model()
    tokens = counting_text(2)
    eager = lm(tokens).numpy()
    for jit_compile in (False, True):
        assert relative_error(tf.function(lm, jit_compile=jit_compile)(tokens).numpy(), eager, ...) < 1e-5
    cache = tf.constant(lm.empty_cache(2, lm.cache_layout("bounded").length))
    step = tf.function(lambda ids, cache, p: lm.call_with_cache(ids, cache, p, bounded=True), jit_compile=True)
    steps = []
    for position in range(tokens.shape[1]):  # one trace: the position is a tensor
        logits, cache = step(tokens[:, position : position + 1], cache, tf.constant(position))
        steps.append(logits.numpy())
    assert relative_error(np.concatenate(steps, axis=1), eager, ...) < 1e-5
    assert step.experimental_get_tracing_count() == 1


def test_traced_settings_that_cannot_work_name_the_setting_and_the_fix():
    lm = language_model()
    with pytest.raises(RuntimeError, match=r"generate was called inside a tf\.function.*Fix: call generate outside"):
        tf.function(lambda prompt: lm.generate(prompt, 4))(tf.constant([[1, 2]]))
    unknown_length = tf.TensorSpec((1, None), tf.int32)
    with pytest.raises(ValueError, match=r"argument `token_ids`.*Fix.*Received: token_ids.shape=\(1, None\)"):
        tf.function(lm, input_signature=[unknown_length]).get_concrete_function()
    cache = lm.empty_cache(1, lm.cache_layout("bounded").length)
    with pytest.raises(ValueError, match=r"argument `token_ids`.*Received: token_ids.shape=\(1, None\)"):
        tf.function(
            lambda ids: lm.call_with_cache(ids, cache, 0, True), input_signature=[unknown_length]
        ).get_concrete_function()
    with pytest.raises(ValueError, match=r"argument `token_ids`.*Received: token_ids.shape=\(16,\)"):
        lm(np.zeros(16, "int32"))  # a 1-D sequence: the error names the model's argument, not an inner layer's


@pytest.mark.slow  # a fresh process with two logical CPUs: 40 s on the shared machine
def test_mirrored_strategy_trains_as_one_device_and_generates_after():
    stdout = run_on_two_devices(
        """
        from tests.models.test_causal_lm_conventions import fit, language_model
        from tests.models.test_causal_lm_conventions import assert_greedy_tokens_follow_the_forward_pass as follows

        one = language_model()
        one_losses = fit(one)
        with strategy.scope():  # built, compiled and trained under the scope
            two = language_model()
            two(np.zeros((1, 8), "int32"))
            two_losses = fit(two)
        np.testing.assert_allclose(two_losses, one_losses, rtol=1e-5)
        worst = max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), two.get_weights()))
        assert worst < 1e-5, worst
        follows(two)  # generate after the scope, and inside it
        with strategy.scope():
            follows(two)
        print("mirrored causal lm ok", worst)
        """
    )
    assert "mirrored causal lm ok" in stdout
