"""The checkpoints transformers wrote (tests/fixtures/make_hf_fixtures.py) and their recorded outputs."""

import pathlib
import shutil

import numpy as np

import keras_sparse as ks

ROOT = pathlib.Path(__file__).parents[2] / "fixtures" / "huggingface"
FOLDERS = ("longformer", "big_bird_block_sparse", "big_bird_original_full", "reformer", "reformer_causal")
RELATIVE_TOLERANCE = 1e-4
"""The issue's bound: float32 relative error on every non-padding row (measured: 2e-7 to 2e-5)."""


def cases(folder: str) -> dict[str, tuple[dict, np.ndarray]]:
    """`{case: (inputs, last_hidden_state)}` as transformers recorded them."""
    recorded = np.load(ROOT / folder / "expected.npz")
    names = sorted({key.split(".")[0] for key in recorded})
    result = {}
    for case in names:
        inputs = {
            key.split(".", 1)[1]: recorded[key].astype("int32")
            for key in recorded
            if key.startswith(f"{case}.") and not key.endswith("last_hidden_state")
        }
        result[case] = inputs, recorded[f"{case}.last_hidden_state"]
    return result


def global_tokens(folder: str) -> tuple[int, ...]:
    """The positions any example of a Longformer folder's cases gives global attention."""
    flags = [inputs["global_attention_mask"].any(axis=0) for inputs, _ in cases(folder).values()]
    return tuple(int(t) for t in np.flatnonzero(np.any(flags, axis=0)))


def load(folder, inputs: dict, **options):
    """`from_huggingface` for the case's length (and, for Longformer, the global tokens its cases use)."""
    if "global_attention_mask" in inputs:
        options.setdefault("global_tokens", global_tokens(folder))
    return ks.models.from_huggingface(ROOT / folder, seq_len=inputs["input_ids"].shape[1], **options)


def relative_error(model, inputs: dict, expected: np.ndarray) -> float:
    """Max error over non-padding rows, relative to the largest recorded value there."""
    real = inputs["attention_mask"].astype(bool)
    return float(np.abs(np.asarray(model(inputs)) - expected)[real].max() / np.abs(expected[real]).max())


def copy_without(folder: str, destination: pathlib.Path, *names: str) -> pathlib.Path:
    """A copy of a fixture folder without the files `names`."""
    target = destination / folder
    shutil.copytree(ROOT / folder, target)
    for name in names:
        (target / name).unlink()
    return target
