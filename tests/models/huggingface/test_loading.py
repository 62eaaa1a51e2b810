"""`from_huggingface` against the outputs transformers recorded for its own tiny checkpoints (no torch here)."""

import functools

import numpy as np
import pytest

import keras_sparse as ks

from .fixtures import FOLDERS, RELATIVE_TOLERANCE, ROOT, cases, copy_without, load, relative_error

CASES = [(folder, case) for folder in FOLDERS for case in cases(folder)]


@functools.lru_cache(maxsize=2)
def loaded(folder: str, seq_len: int):
    return load(folder, next(inputs for inputs, _ in cases(folder).values() if inputs["input_ids"].shape[1] == seq_len))


@pytest.mark.parametrize("folder, case", CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_last_hidden_state_equals_transformers_on_real_rows(folder, case):
    inputs, expected = cases(folder)[case]
    model = loaded(folder, inputs["input_ids"].shape[1])
    assert relative_error(model, inputs, expected) < RELATIVE_TOLERANCE


def test_longformer_candidate_global_tokens_that_no_example_uses_change_nothing():
    inputs, expected = cases("longformer")["padded"]
    model = ks.models.from_huggingface(ROOT / "longformer", seq_len=40, global_tokens=(0, 5, 12, 20, 39))
    assert relative_error(model, inputs, expected) < RELATIVE_TOLERANCE


def test_longformer_zeroes_padded_rows_as_transformers():
    inputs, expected = cases("longformer")["padded"]
    padded = ~inputs["attention_mask"].astype(bool)
    assert padded.any()
    got = np.asarray(load("longformer", inputs)(inputs))
    assert np.abs(got - expected)[padded].max() / np.abs(expected).max() < RELATIVE_TOLERANCE


def test_big_bird_random_blocks_drawn_differ_from_transformers_eval_mode():
    """The fixture tells layouts apart: drawing random blocks (training mode's kind) misses transformers' numbers."""
    inputs, expected = cases("big_bird_block_sparse")["unpadded"]
    assert relative_error(load("big_bird_block_sparse", inputs, random_blocks="drawn"), inputs, expected) > 1e-3


def test_big_bird_short_sequences_fall_back_to_full_attention():
    inputs, _ = cases("big_bird_block_sparse")["short"]
    model = load("big_bird_block_sparse", inputs)
    assert model.get_layer("layer_0_attention").pattern.full_attention(inputs["input_ids"].shape[1])


def test_reformer_without_recorded_rotations_warns_and_hashes_otherwise(tmp_path):
    folder = copy_without("reformer", tmp_path, "lsh_rotations.safetensors")
    inputs, expected = cases("reformer")["unpadded"]
    with pytest.warns(UserWarning, match="lsh_rotations.safetensors.*hash_seed=3"):
        model = ks.models.from_huggingface(folder, seq_len=30)
    assert relative_error(model, inputs, expected) > 1e-3


def test_reformer_pads_inside_the_model_as_transformers():
    inputs, _ = cases("reformer")["padded"]
    model = load("reformer", inputs)
    assert model.output_shape == (None, 30, 64)  # 2 * hidden, the caller's length (run padded to 32)
    assert model.get_layer("layer_1_attention").pattern == ks.patterns.LSH(
        num_buckets=4, num_hashes=2, chunk_size=8, seed=0, semantics="trax"
    )
    assert model.get_layer("layer_0_attention").pattern == ks.patterns.BlockLocal(
        16, num_blocks_before=1, num_blocks_after=1, wrap=True
    )
