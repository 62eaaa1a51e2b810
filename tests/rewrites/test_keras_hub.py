"""`sparsify` on keras-hub backbones and tasks, against keras-hub's own models.

Each test runs one or two of Bert, GPT2 and Bart (an encoder, a decoder, both) in the default suite and every
backbone behind `-m slow`.
"""

import keras
import keras_hub
import numpy as np
import pytest

import keras_sparse as ks
from tests.reference import relative_error
from tests.rewrites.hub_models import (
    BACKBONES,
    CAUSAL,
    LENGTH,
    UNSUPPORTED,
    backbone,
    inputs,
    live_rows,
    self_attention_with_mask,
    sequence_outputs,
)

WINDOW = ks.patterns.SlidingWindow(8, global_tokens=(0,), block_size=8)
BIG_BIRD = ks.patterns.BigBird(block_size=8, num_global_blocks=1, num_random_blocks=1)


def names(fast: tuple[str, ...] = (), cases=None):
    cases = list(BACKBONES) if cases is None else cases
    return [
        pytest.param(*(case if isinstance(case, tuple) else (case,)), marks=() if case in fast else pytest.mark.slow)
        for case in cases
    ]


def attention_settings(model):
    return [
        (layer.pattern, layer.implementation, layer.causal)
        for layer in model._flatten_layers()
        if isinstance(layer, ks.layers.SparseMultiHeadAttention)
    ]


def assert_outputs_equal(actual, expected, data, tolerance):
    actual, expected = sequence_outputs(actual), sequence_outputs(expected)
    assert actual.keys() == expected.keys()
    for key in expected:
        assert relative_error(actual[key], expected[key], live_rows(data)) < tolerance, key


@pytest.mark.parametrize("name", names(fast=("Bert", "GPT2")))
def test_dense_pattern_keeps_the_class_and_equals_the_original(name):
    original = backbone(name)
    data = inputs(original)
    sparse = ks.sparsify(original, ks.patterns.Dense(block_size=8))
    assert isinstance(sparse, type(original)) and attention_settings(sparse)  # Albert shares one encoder
    assert not attention_settings(original)  # the original is not changed
    assert_outputs_equal(sparse(data), original(data), data, 1e-6)


@pytest.mark.parametrize(
    "name, pattern",
    names(
        fast=(("Bert", "window"), ("GPT2", "bigbird"), ("Bart", "window")),
        cases=[(name, pattern) for name in BACKBONES for pattern in ("window", "bigbird")],
    ),
)
def test_a_pattern_equals_keras_hub_with_the_pattern_as_attention_mask(name, pattern):
    pattern = {"window": WINDOW, "bigbird": BIG_BIRD}[pattern]
    original = backbone(name)
    data = inputs(original)
    sparse = ks.sparsify(original, pattern)
    with self_attention_with_mask(original, pattern.mask(LENGTH)):
        expected = original(data)
    assert_outputs_equal(sparse(data), expected, data, 1e-5)
    if name in CAUSAL:  # a decoder's self-attention skips the blocks above the diagonal
        assert all(causal for _, _, causal in attention_settings(sparse))


@pytest.mark.parametrize("name", names())
def test_fit_reduces_the_loss(name):
    sparse = ks.sparsify(backbone(name), WINDOW)
    data = inputs(sparse, batch=8)
    features = sparse.output
    if isinstance(features, dict):
        features = features.get("sequence_output", features.get("decoder_sequence_output"))
    model = keras.Model(sparse.input, keras.layers.Dense(1)(features))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    token_ids = data["decoder_token_ids" if "decoder_token_ids" in data else "token_ids"]
    target = (token_ids % 2)[..., None].astype("float32")  # learnable from each token's own embedding
    history = model.fit(data, target, epochs=6, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]


@pytest.mark.parametrize("name", names(fast=("GPT2",)))
def test_keras_file_keeps_pattern_kernel_and_outputs(name, tmp_path):
    sparse = ks.sparsify(backbone(name), BIG_BIRD, implementation="segment")
    sparse.save(tmp_path / "sparse.keras")
    loaded = keras.saving.load_model(tmp_path / "sparse.keras")
    assert type(loaded) is type(sparse) and attention_settings(loaded) == attention_settings(sparse)
    data = inputs(sparse)
    assert_outputs_equal(loaded(data), sparse(data), data, 1e-6)


def greedy_generations(lm, data):
    """`lm.generate` with a greedy sampler, and what a full forward pass of `lm` predicts at each position."""
    generated = lm.generate(data, stop_token_ids=None)
    tokens = {name: value for name, value in generated.items()}
    full = dict(data, **tokens)
    for name in full:
        if "padding_mask" in name:
            full[name] = np.ones_like(full[name], bool)
    predicted = np.argmax(np.asarray(lm(full)), axis=-1)
    key = "decoder_token_ids" if "decoder_token_ids" in tokens else "token_ids"
    return np.asarray(tokens[key]), predicted


@pytest.mark.parametrize("jit_compile", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.parametrize(
    "name, task",
    [
        ("GPT2", keras_hub.models.GPT2CausalLM),
        pytest.param("OPT", keras_hub.models.OPTCausalLM, marks=pytest.mark.slow),
        pytest.param("Bart", keras_hub.models.BartSeq2SeqLM, marks=pytest.mark.slow),
    ],
)
def test_generate_gives_the_tokens_of_a_full_forward_pass(name, task, jit_compile):
    lm = task(backbone=ks.sparsify(backbone(name), WINDOW), preprocessor=None)
    lm.compile(sampler="greedy", jit_compile=jit_compile)
    prompt = 5
    prompt_mask = np.zeros((2, LENGTH), bool)
    prompt_mask[:, :prompt] = True
    tokens = np.random.default_rng(0).integers(1, 50, (2, LENGTH)).astype("int32") * prompt_mask
    if name == "Bart":
        data = {
            "encoder_token_ids": np.random.default_rng(1).integers(1, 50, (2, LENGTH)).astype("int32"),
            "encoder_padding_mask": np.ones((2, LENGTH), bool),
            "decoder_token_ids": tokens,
            "decoder_padding_mask": prompt_mask,
        }
    else:
        data = {"token_ids": tokens, "padding_mask": prompt_mask}
    generated, predicted = greedy_generations(lm, data)
    np.testing.assert_array_equal(generated[:, prompt:], predicted[:, prompt - 1 : -1])


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_backbones_with_other_attention_are_named_with_the_reason(name):
    expected = {
        "DebertaV3": "DisentangledSelfAttention.*DeBERTa",
        "XLNet": "TwoStreamRelativeAttention.*XLNet",
        "FNet": "no attention layer",
        "T5": "T5MultiHeadAttention.*relative-position",
        "RoformerV2": "RoformerAttention.*rotary",
        "ESM": "EsmSelfAttention.*rotary",
        "Llama": "LlamaAttention.*grouped-query",
    }[name]
    keras.utils.set_random_seed(0)
    with pytest.raises(ValueError, match=expected):
        ks.sparsify(UNSUPPORTED[name](), WINDOW)


def test_a_text_classifier_on_a_sparse_backbone_trains_and_loads_back(tmp_path):
    classifier = keras_hub.models.BertTextClassifier(
        backbone=ks.sparsify(backbone("Bert"), WINDOW), num_classes=2, preprocessor=None, dropout=0.0
    )
    data = inputs(classifier, batch=8)
    labels = data["token_ids"][:, 0] % 2  # the first token's parity: the pooled token sees it
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # keras-hub's classifiers give logits
    classifier.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss)
    history = classifier.fit(data, labels, epochs=20, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    classifier.save(tmp_path / "classifier.keras")
    loaded = keras.saving.load_model(tmp_path / "classifier.keras")
    assert type(loaded) is keras_hub.models.BertTextClassifier
    assert attention_settings(loaded) == attention_settings(classifier)
    np.testing.assert_allclose(loaded.predict(data, verbose=0), classifier.predict(data, verbose=0), atol=1e-6)
    copy = ks.sparsify(classifier, ks.patterns.Dense(block_size=8))  # a task model goes through too
    assert type(copy) is keras_hub.models.BertTextClassifier and copy.backbone is not classifier.backbone


@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_a_sparsified_text_classifier_exports_from_dict_inputs_verified_against_itself(quantization, tmp_path):
    from converters import to_tflite

    classifier = keras_hub.models.BertTextClassifier(
        backbone=ks.sparsify(backbone("Bert"), WINDOW), num_classes=3, preprocessor=None
    )
    calibration = inputs(classifier, batch=16, seed=1)
    result = to_tflite(
        classifier,
        tmp_path / "classifier.tflite",
        quantization=quantization,
        representative_data=calibration,
        verification_data=inputs(classifier, batch=8, seed=2),
        seq_len=LENGTH,
    )
    assert not {op for op in result.ops if op.startswith("FlexDelegate") or op == "CUSTOM"}
    assert result.max_relative_error < (1e-5 if quantization == "float32" else 0.1)
    assert "GATHER" in result.ops  # the sparse kernel, not dense attention, went into the file


def test_a_sparsified_decoder_refuses_to_drop_its_causal_mask():
    decoder = ks.sparsify(backbone("GPT2"), WINDOW).transformer_layers[0]
    with pytest.raises(ValueError, match="`use_causal_mask`.*'transformer_layer_0'"):
        decoder(np.zeros((1, LENGTH, 16), "float32"), use_causal_mask=False)
