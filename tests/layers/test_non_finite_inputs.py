"""Bad numbers stay where they are: a NaN token or an overflowing padding token in one sample never reaches
another sample, and never a row that Keras's own MultiHeadAttention keeps finite.

Measured on Keras 3.15 (the reference): a NaN token, masked or not, makes Keras's whole sample NaN (its value
row meets a zero probability, `0 * NaN`); a padding token whose scores overflow (to +-inf) leaves every row
finite, since Keras masks with `tf.where`. Each kernel runs under float32, mixed_float16 and mixed_bfloat16.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

import keras_sparse as ks
from tests.reference import KERNEL_OPTIONS, RELATIVE_TOLERANCE

SEQ_LEN, DIM, HEADS, KEY_DIM = 64, 16, 2, 8
BAD = 3  # the bad token, in sample 0
PATTERN = ks.patterns.SlidingWindow(16, block_size=16)
LSH = ks.patterns.LSH(4, num_hashes=2, chunk_size=16)
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
TOLERANCE = {"float32": RELATIVE_TOLERANCE, "mixed_float16": 1e-2, "mixed_bfloat16": 6e-2}
"""Against Keras under the same policy: Keras takes its softmax in float32, the kernels in the compute dtype."""
CASES = ("nan_unmasked", "nan_masked", "overflow", "overflow_attention_mask")
FAR_ROWS = slice(3 * 16, SEQ_LEN)
"""Rows 48-63: their windows and gathered key blocks (positions 32 on) never hold the bad token."""


def overflowing_token(layer: keras.layers.MultiHeadAttention, policy: str) -> np.ndarray:
    """An input token whose own score overflows the compute dtype to -inf, by 8x, while its value stays finite.

    The direction is the most negative eigenvector of head 0's `W_q W_k^T`: its score with itself is then
    `scale^2 * eigenvalue / sqrt(key_dim)`.
    """
    query = np.asarray(layer.query_dense.kernel)[:, 0]  # (DIM, KEY_DIM)
    key = np.asarray(layer.key_dense.kernel)[:, 0]
    product = query @ key.T
    eigenvalues, eigenvectors = np.linalg.eigh((product + product.T) / 2)
    limit = float(np.finfo(np.float16).max if policy == "mixed_float16" else np.finfo(np.float32).max)
    scale = np.sqrt(8 * limit * np.sqrt(KEY_DIM) / -eigenvalues[0])
    token = (scale * eigenvectors[:, 0]).astype("float32")
    assert eigenvalues[0] < 0 and np.abs(token @ np.asarray(layer.value_dense.kernel)[:, 0]).max() < limit / 8
    return token


@functools.cache
def keras_twin(policy: str) -> keras.layers.MultiHeadAttention:
    keras.utils.set_random_seed(0)
    layer = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, dtype=policy)
    layer(np.zeros((1, SEQ_LEN, DIM), "float32"), np.zeros((1, SEQ_LEN, DIM), "float32"))
    return layer


def bad_batch(case: str, policy: str):
    """`(inputs, key padding or None, attention mask or None)` for a case; the bad token is masked by the key
    padding in "nan_masked" and "overflow", by the attention mask in "overflow_attention_mask"."""
    x = np.random.default_rng(0).normal(size=(2, SEQ_LEN, DIM)).astype("float32")
    x[0, BAD] = np.nan if case.startswith("nan") else overflowing_token(keras_twin(policy), policy)
    padding = attention_mask = None
    if case in ("nan_masked", "overflow"):
        padding = np.ones((2, SEQ_LEN), bool)
        padding[0, BAD] = False
    if case == "overflow_attention_mask":
        attention_mask = np.ones((2, SEQ_LEN, SEQ_LEN), bool)
        attention_mask[0, :, BAD] = False
    return x, padding, attention_mask


def run(layer, x, padding, attention_mask, pattern_mask=None) -> np.ndarray:
    if pattern_mask is not None:  # Keras: the pattern as its attention mask
        attention_mask = pattern_mask[None] if attention_mask is None else pattern_mask[None] & attention_mask
    return np.asarray(layer(x, x, value_mask=padding, attention_mask=attention_mask), "float32")


def assert_no_worse_than(output: np.ndarray, reference: np.ndarray, policy: str) -> None:
    """The clean sample matches the reference; in the bad sample every row the reference keeps finite does too.

    But for the overflowing token's own row in float32: its scores overflow, and float32 scores are not
    clipped (kernels/masked_softmax.py says why).
    """
    clean = np.abs(output[1] - reference[1]).max() / np.abs(reference[1]).max()
    assert clean < TOLERANCE[policy], clean
    kept = np.isfinite(reference[0]).all(-1)
    if policy == "float32":
        kept[BAD] = False
    assert np.isfinite(output[0][kept]).all(), f"rows Keras keeps finite: {np.flatnonzero(kept)}"
    if kept.any():
        error = np.abs(output[0][kept] - reference[0][kept]).max() / np.abs(reference[0][kept]).max()
        assert error < TOLERANCE[policy], error


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("kernel", KERNEL_OPTIONS)
def test_a_bad_token_reaches_no_other_sample_and_no_row_keras_keeps(kernel, policy, case):
    batch = bad_batch(case, policy)
    reference = keras_twin(policy)
    expected = run(reference, *batch, pattern_mask=PATTERN.mask(SEQ_LEN))
    layer = ks.layers.SparseMultiHeadAttention(HEADS, KEY_DIM, pattern=PATTERN, dtype=policy, **KERNEL_OPTIONS[kernel])
    layer(batch[0], batch[0])
    layer.set_weights(reference.get_weights())
    output = run(layer, *batch)
    assert_no_worse_than(output, expected, policy)
    if kernel != "dense":  # Keras's sample is all NaN here; the sparse kernels keep the rows that never see it
        assert np.isfinite(output[0, FAR_ROWS]).all()


@pytest.mark.parametrize("case", ("nan_unmasked", "nan_masked", "overflow"))
@pytest.mark.parametrize("policy", POLICIES)
def test_a_bad_token_stays_in_its_sample_with_lsh(policy, case):
    """LSH has no Keras twin: the clean sample must come out as it does in a batch of its own."""
    x, padding, _ = bad_batch(case, policy)
    layer = ks.layers.SparseMultiHeadAttention(HEADS, KEY_DIM, pattern=LSH, dtype=policy)
    output = np.asarray(layer(x, x, value_mask=padding), "float32")
    alone = np.asarray(layer(x[1:], x[1:]), "float32")
    assert np.abs(output[1] - alone[0]).max() / np.abs(alone).max() < TOLERANCE[policy]
    if case == "overflow":  # every row but the padding token's own has finite numbers
        assert np.isfinite(np.delete(output[0], BAD, axis=0)).all()
