import keras
import numpy as np
import pytest

import keras_sparse as ks

SEQ_LEN, CLASSES, VOCAB = 128, 4, 16


def retrieval_task(count: int, seed: int):
    """Class = the label token at position 0; filler tokens are never labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, size=count)
    tokens = rng.integers(1 + CLASSES, VOCAB, size=(count, SEQ_LEN))
    tokens[:, 0] = 1 + labels
    return tokens.astype("int32"), labels


def build_classifier(pattern, implementation="auto", layer_norm=False, embedding=ks.layers.TokenEmbedding):
    keras.utils.set_random_seed(0)
    tokens = keras.Input((SEQ_LEN,), dtype="int32")
    positions = embedding(SEQ_LEN, 16)(keras.ops.arange(SEQ_LEN)[None])
    x = embedding(VOCAB, 16)(tokens) + positions  # TokenEmbedding is a plain GATHER: it runs on TFLite Micro
    x = x + ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=8, pattern=pattern, implementation=implementation)(
        x, x
    )
    if layer_norm:
        x = keras.layers.LayerNormalization()(x)
    return keras.Model(tokens, keras.layers.Dense(CLASSES)(x[:, -1]))


@pytest.fixture(scope="session")
def trained_classifier():
    """A BigBird classifier trained to high accuracy, so argmax agreement is a meaningful check."""
    model = build_classifier(ks.patterns.BigBird(32, num_global_blocks=1, num_random_blocks=1))
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, y = retrieval_task(1024, seed=0)
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def held_out():
    return retrieval_task(128, seed=1)


def dict_input_model(pattern=None):
    """A classifier taking keras-hub's dict of inputs: token ids, a padding mask and segment ids."""
    keras.utils.set_random_seed(0)
    token_ids = keras.Input((SEQ_LEN,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((SEQ_LEN,), dtype="int32", name="padding_mask")
    segment_ids = keras.Input((SEQ_LEN,), dtype="int32", name="segment_ids")
    x = ks.layers.TokenEmbedding(VOCAB, 16, name="token_embedding")(token_ids)
    x = x + ks.layers.TokenEmbedding(2, 16, name="segment_embedding")(segment_ids)
    x = x * keras.ops.expand_dims(keras.ops.cast(padding_mask, "float32"), -1)
    attention = ks.layers.SparseMultiHeadAttention(2, 8, pattern=pattern or ks.patterns.SlidingWindow(32))
    x = x + attention(x, x)
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask, "segment_ids": segment_ids}
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(x[:, 0]))


def dict_input_data(count: int, seed: int) -> dict:
    """Inputs for `dict_input_model`: random ids, padding after a random length, two segments."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(SEQ_LEN // 2, SEQ_LEN + 1, size=count)
    positions = np.arange(SEQ_LEN)
    return {
        "token_ids": rng.integers(1, VOCAB, size=(count, SEQ_LEN)).astype("int32"),
        "padding_mask": (positions < lengths[:, None]).astype("int32"),
        "segment_ids": (positions >= lengths[:, None] // 2).astype("int32"),
    }


LM_VOCAB = 12
LM_PATTERN = ks.patterns.SlidingWindow(window_size=8, global_tokens=(0, 1), block_size=8)


def language_model(pattern=LM_PATTERN, intermediate_dim=32, position_encoding="sinusoidal"):
    keras.utils.set_random_seed(0)
    sizes = dict(vocab_size=LM_VOCAB, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=intermediate_dim)
    lm = ks.models.SparseCausalLM(**sizes, pattern=pattern, position_encoding=position_encoding)
    lm(np.zeros((1, 16), "int32"))
    return lm


def text(count: int, length: int, seed: int = 0) -> np.ndarray:
    """Sequences of a counting 'language' (each token is the previous one plus 1 or 2, mod LM_VOCAB)."""
    steps = np.random.default_rng(seed).choice([1, 2], p=[0.9, 0.1], size=(count, length))
    return (np.cumsum(steps, axis=1) % LM_VOCAB).astype("int32")


@pytest.fixture(scope="session")
def trained_lm():
    """The window-with-sinks model trained on the counting language, sequences of 32 tokens (positions past 32
    are new to it: verify within them)."""
    return train_lm(language_model())


def train_lm(lm):
    """`lm` trained on the counting language (sequences of 32 tokens)."""
    data = text(64, 33)
    lm.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    lm.fit(data[:, :-1], data[:, 1:], epochs=25, batch_size=16, verbose=0)  # loss 2.5 -> 0.3
    return lm
