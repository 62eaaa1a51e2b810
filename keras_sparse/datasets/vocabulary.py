"""`Vocabulary`: token strings to ids and back, saved beside a model as JSON so apps tokenize the same way."""

from __future__ import annotations

import json
import os

import numpy as np

from keras_sparse.files import write_atomically

PAD, CLS = "<pad>", "<cls>"


class Vocabulary:
    """A fixed list of tokens; id 0 is padding, id 1 the classification token put first.

    Args:
        tokens: the task's own tokens (after `<pad>` and `<cls>`).

    Example:

    >>> vocabulary = Vocabulary(["[MAX", "]", "1", "2"])
    >>> vocabulary.encode("[MAX 1 2 ]", seq_len=8)
    array([1, 2, 4, 5, 3, 0, 0, 0], dtype=int32)
    >>> vocabulary.decode([1, 2, 4, 5, 3, 0])
    '[MAX 1 2 ]'
    """

    def __init__(self, tokens):
        self.tokens = [PAD, CLS, *tokens]
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError(f"Received an invalid value for argument `tokens`: duplicates in {tokens!r}")
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self):
        return len(self.tokens)

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and other.tokens == self.tokens

    def encode(self, text: str, seq_len: int) -> np.ndarray:
        """`<cls>` then the whitespace-separated tokens of `text`, padded with 0 to `seq_len`."""
        words = text.split()
        unknown = [w for w in words if w not in self._ids or w in (PAD, CLS)]
        if unknown:
            raise ValueError(f"Received unknown tokens {unknown[:5]} in `text`; the vocabulary is {self.tokens[2:]}")
        if len(words) + 1 > seq_len:
            raise ValueError(
                f"Received a `text` of {len(words)} tokens; with <cls> it needs seq_len >= {len(words) + 1}, "
                f"got seq_len={seq_len}."
            )
        ids = np.zeros(seq_len, dtype=np.int32)
        ids[0] = self._ids[CLS]
        ids[1 : len(words) + 1] = [self._ids[w] for w in words]
        return ids

    def decode(self, ids) -> str:
        """The text of `ids`, without `<cls>` and padding."""
        return " ".join(self.tokens[i] for i in np.asarray(ids).ravel() if i > 1)

    def save(self, path, overwrite: bool = False) -> None:
        """Writes `{"tokens": [...], "pad_id": 0, "cls_id": 1}`; an existing file only with `overwrite=True`."""
        content = {"tokens": self.tokens, "pad_id": 0, "cls_id": 1}
        write_atomically(os.fspath(path), json.dumps(content, indent=1).encode(), overwrite=overwrite)

    @classmethod
    def load(cls, path) -> Vocabulary:
        with open(path) as file:
            tokens = json.load(file)["tokens"]
        if tokens[:2] != [PAD, CLS]:
            raise ValueError(f"{path} is not a keras_sparse vocabulary: it must start with {PAD!r}, {CLS!r}.")
        return cls(tokens[2:])
