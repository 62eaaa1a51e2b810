"""`from_huggingface`: a transformers checkpoint folder to a Keras model, without torch or network."""

from __future__ import annotations

import keras

from keras_sparse.models.huggingface import big_bird, longformer, reformer
from keras_sparse.models.huggingface.checkpoint import UnsupportedCheckpointError, read_checkpoint
from keras_sparse.patterns.big_bird import RANDOM_BLOCKS
from keras_sparse.validation import non_negative_int, one_of, optional_positive_int

ARCHITECTURES = {"longformer": longformer, "big_bird": big_bird, "reformer": reformer}
"""transformers' `model_type` and the module building its Keras model."""


def from_huggingface(
    path,
    seq_len: int | None = None,
    global_tokens: tuple[int, ...] | None = None,
    random_blocks: str = "block_zero",
    seed: int = 0,
) -> keras.Model:
    """A Keras model computing a transformers Longformer, BigBird or Reformer checkpoint's `last_hidden_state`.

    Reads a local folder as transformers' `save_pretrained` (or `huggingface-cli download --local-dir`)
    writes it: `config.json` and `model.safetensors` (or its shards), with safetensors' NumPy API: no
    torch, no network (a Hub id is not fetched). Weights of task heads (`lm_head`, `qa_outputs`, ...) are
    ignored. The model's call takes a dict of int32 `(batch, seq_len)` tensors named as transformers'
    inputs and returns `last_hidden_state`, float32 `(batch, seq_len, hidden)` (Reformer: `2 * hidden`).
    On every non-padding row it equals transformers' eval-mode output (tested to a relative error
    below 1e-4 on checkpoints transformers wrote, `tests/fixtures/huggingface/`). It trains with `fit`,
    saves as `.keras`, prunes with `keras_sparse.pruning` and converts with `converters.to_tflite`.

    - Longformer (`model_type="longformer"`): inputs `input_ids`, `attention_mask`, `global_attention_mask`.
      Layers are `LongformerSelfAttention` with the checkpoint's per-layer `attention_window`; global
      attention is available at the positions `global_tokens`, and `global_attention_mask` chooses among
      them per example.
    - BigBird (`model_type="big_bird"`): inputs `input_ids`, `attention_mask`. "block_sparse" layers are
      `SparseMultiHeadAttention` with `BigBird(layout_style="original", random_blocks=random_blocks)`
      (full attention at or below `(5 + 2 * num_random_blocks) * block_size` tokens, as transformers);
      "original_full" layers with `Dense()`.
    - Reformer (`model_type="reformer"`): inputs `input_ids`, `attention_mask`. LSH layers are
      `SparseMultiHeadAttention` with `LSH(semantics="trax")`, local layers with `BlockLocal(wrap=True)`;
      causal when the config says `is_decoder`. Sequences are padded inside the model as transformers
      pads them. transformers draws LSH rotations with torch's generator; a folder's
      `lsh_rotations.safetensors` (`encoder.layers.{i}.attention.self_attention.rotations`, as
      transformers draws them: `(heads, head_dim, num_hashes, buckets / 2)`) gives them, otherwise they
      are drawn from `seed` (with a warning).

    Args:
        path: the checkpoint folder.
        seq_len: the model's fixed sequence length. Defaults to the longest the checkpoint's position
            embeddings allow.
        global_tokens: Longformer only: positions that may take global attention. Defaults to `(0,)`.
        random_blocks: BigBird only: "block_zero" (default; transformers' eval mode since its PR 23056: the
            random blocks are all block 0) or "drawn" (random blocks drawn per head from `seed`).
        seed: BigBird's drawn random blocks, Reformer's rotations when the folder has none.

    Returns:
        A functional `keras.Model`.

    Raises:
        FileNotFoundError: no such folder, or no safetensors weights in it.
        UnsupportedCheckpointError (a ValueError): another architecture, or an option this does not reproduce.
        ValueError: arguments that do not apply to the checkpoint's architecture, or a `seq_len` too long.

    Example:

    >>> import pathlib, numpy as np, keras_sparse as ks
    >>> folder = pathlib.Path(ks.__file__).parents[1] / "tests/fixtures/huggingface/longformer"
    >>> model = ks.models.from_huggingface(folder, seq_len=40, global_tokens=(0,))
    >>> ids = np.full((1, 40), 5, "int32")
    >>> inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids), "global_attention_mask": np.zeros_like(ids)}
    >>> tuple(model(inputs).shape)
    (1, 40, 32)
    """
    seq_len = optional_positive_int("seq_len", seq_len)
    random_blocks = one_of("random_blocks", random_blocks, RANDOM_BLOCKS)
    seed = non_negative_int("seed", seed)
    checkpoint = read_checkpoint(path)
    model_type = checkpoint.config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise UnsupportedCheckpointError(
            f"The checkpoint in {checkpoint.path} is a {model_type!r} model; keras_sparse.models.from_huggingface "
            f"reads {sorted(ARCHITECTURES)} checkpoints."
        )
    if global_tokens is not None and model_type != "longformer":
        raise ValueError(
            f"Received an invalid value for argument `global_tokens`: it applies to Longformer checkpoints, and "
            f"this one is {model_type!r}. Received: global_tokens={global_tokens!r}"
        )
    architecture = ARCHITECTURES[model_type]
    checkpoint = checkpoint.base_model(architecture.PREFIX)
    if model_type == "longformer":
        return longformer.build(checkpoint, seq_len, global_tokens)
    if model_type == "big_bird":
        return big_bird.build(checkpoint, seq_len, random_blocks, seed)
    return reformer.build(checkpoint, seq_len, seed)
