"""A transformers checkpoint folder read without torch: `config.json` and safetensors weights as NumPy arrays."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re

import keras
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

WEIGHTS = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class UnsupportedCheckpointError(ValueError):
    """The folder holds an architecture or an option `from_huggingface` does not reproduce."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder's config and weights, with the base model's prefix taken off weight names.

    Attributes:
        path: the folder.
        config: `config.json` as a dict.
        weights: float32 arrays by name, e.g. `encoder.layer.0.attention.self.query.weight` (PyTorch
            layouts: a Linear's weight is `(out_features, in_features)`).
        files: the other safetensors files of the folder, by file name (e.g. `lsh_rotations.safetensors`).
    """

    path: pathlib.Path
    config: dict
    weights: dict[str, np.ndarray]
    files: dict[str, dict[str, np.ndarray]]

    def base_model(self, prefix: str) -> Checkpoint:
        """The same checkpoint with `prefix` (e.g. "longformer.") taken off the names that have it, so that a
        checkpoint saved from a model with a task head reads like the base model."""
        weights = {name.removeprefix(prefix): value for name, value in self.weights.items()}
        return dataclasses.replace(self, weights=weights)

    def option(self, name: str, default=None):
        """`config[name]`, or `default` when the config does not set it."""
        value = self.config.get(name)
        return default if value is None else value

    def weight(self, name: str) -> np.ndarray:
        """The weight `name`; a missing one is an error naming it and the folder."""
        if name not in self.weights:
            raise UnsupportedCheckpointError(
                f"The checkpoint in {self.path} has no weight `{name}` (it has {len(self.weights)} others, e.g. "
                f"{sorted(self.weights)[:3]}). Is it a complete {self.config.get('model_type')} checkpoint?"
            )
        return self.weights[name]

    def linear(self, name: str, bias: bool = True) -> list[np.ndarray]:
        """A Linear layer `name` as a Keras Dense's `[kernel (in, out), bias]` (`[kernel]` without bias)."""
        kernel = self.weight(f"{name}.weight").T
        return [kernel, self.weight(f"{name}.bias")] if bias else [kernel]

    def unsupported(self, option: str, value, supported: str) -> UnsupportedCheckpointError:
        return UnsupportedCheckpointError(
            f"The {self.config.get('model_type')} checkpoint in {self.path} sets {option}={value!r}; "
            f"keras_sparse.models.from_huggingface reproduces {supported}."
        )


def read_checkpoint(path) -> Checkpoint:
    """Reads `config.json` and `model.safetensors` (or its shards) from a local folder.

    Args:
        path: the folder, as `save_pretrained` or `huggingface-cli download --local-dir` writes it.

    Raises:
        FileNotFoundError: no such folder (hub ids are not fetched: download the folder first), or no
            safetensors weights in it.
    """
    folder = pathlib.Path(path)
    if not folder.is_dir():
        hint = ""
        if _HUB_ID.match(str(path)) and not folder.exists():
            hint = (
                f" It looks like a Hugging Face Hub id: keras_sparse reads local folders only and fetches "
                f"nothing. Download it elsewhere (`huggingface-cli download {path} --local-dir DIR`) and pass DIR."
            )
        raise FileNotFoundError(f"Received path={str(path)!r}: no such folder.{hint}")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: it is not a transformers checkpoint folder.")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{config_file} is not valid JSON ({error}): the checkpoint folder is damaged. Download it again."
        ) from None
    weights = {}
    for shard in _weight_files(folder):
        weights.update(_load(shard))
    skip = {WEIGHTS} | {p.name for p in _weight_files(folder)}
    files = {p.name: _load(p) for p in sorted(folder.glob("*.safetensors")) if p.name not in skip}
    return Checkpoint(folder, config, weights, files)


def _weight_files(folder: pathlib.Path) -> list[pathlib.Path]:
    if (folder / WEIGHTS).is_file():
        return [folder / WEIGHTS]
    if (folder / SHARD_INDEX).is_file():
        shards = sorted(set(json.loads((folder / SHARD_INDEX).read_text())["weight_map"].values()))
        return [folder / shard for shard in shards]
    others = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".h5", ".msgpack", ".ckpt"))
    raise FileNotFoundError(
        f"{folder} has no {WEIGHTS} (nor {SHARD_INDEX}); it has {others or 'no weights'}. keras_sparse reads "
        "safetensors only (no torch): convert once where torch is installed, e.g. "
        "`AutoModel.from_pretrained(folder).save_pretrained(folder)` writes model.safetensors."
    )


def _load(file: pathlib.Path) -> dict[str, np.ndarray]:
    try:
        arrays = load_file(file)
    except (SafetensorError, TypeError, ValueError) as error:  # bfloat16 has no NumPy dtype
        raise UnsupportedCheckpointError(
            f"Cannot read {file} with safetensors' NumPy API ({error}). keras_sparse reads float32 and float16 "
            "weights; save bfloat16 checkpoints as float32 first (`model.float().save_pretrained(...)`)."
        ) from None
    return {name: value.astype(np.float32) if value.dtype.kind == "f" else value for name, value in arrays.items()}


def assign(layer: keras.layers.Layer, values: list[np.ndarray], source: str) -> None:
    """`layer.set_weights(values)` with shapes checked: a mismatch names the layer and the checkpoint weights."""
    expected = [tuple(w.shape) for w in layer.weights]
    received = [tuple(np.shape(v)) for v in values]
    if expected != received:
        raise UnsupportedCheckpointError(
            f"The checkpoint's {source} has shapes {received}, but layer '{layer.name}' holds {expected}: "
            "the config and the weights disagree."
        )
    layer.set_weights(values)
