"""`Vocabulary`: token strings to ids and back, saved beside a model as JSON so apps tokenize the same way."""

from __future__ import annotations

import json
import os

import numpy as np

from keras_sparse.files import write_atomically
from keras_sparse.validation import boolean, invalid_argument, positive_int

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
        if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
            raise invalid_argument("tokens", "a list of token strings", f"tokens={tokens!r}")
        unusable = [t for t in tokens if not isinstance(t, str) or len(t.split()) != 1 or t != t.strip()]
        if unusable:
            raise invalid_argument(
                "tokens",
                "non-empty strings without whitespace (texts are split into tokens on whitespace)",
                f"tokens containing {unusable[:5]!r}",
            )
        self.tokens = [PAD, CLS, *tokens]
        if len(set(self.tokens)) != len(self.tokens):
            duplicates = sorted({t for t in self.tokens if self.tokens.count(t) > 1})
            raise invalid_argument(
                "tokens", f"distinct tokens other than {PAD!r} and {CLS!r}", f"tokens repeating {duplicates[:5]!r}"
            )
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self):
        return len(self.tokens)

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and other.tokens == self.tokens

    def encode(self, text: str, seq_len: int) -> np.ndarray:
        """`<cls>` then the whitespace-separated tokens of `text`, padded with 0 to `seq_len`: int32 `(seq_len,)`.

        Raises ValueError for tokens outside the vocabulary and for texts longer than `seq_len - 1` tokens.
        """
        if not isinstance(text, str):
            raise invalid_argument("text", "a string of whitespace-separated tokens", f"text={text!r}")
        seq_len = positive_int("seq_len", seq_len)
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
        """The text of integer `ids` (any shape, read in order), without `<cls>` and padding.

        Raises ValueError for ids that are not integers or not in `[0, len(vocabulary))`.
        """
        ids = np.asarray(ids)
        if ids.size == 0:
            return ""
        if ids.dtype.kind not in "iu":
            raise invalid_argument("ids", "integer token ids", f"ids of dtype {ids.dtype}")
        unknown = np.unique(ids[(ids < 0) | (ids >= len(self.tokens))])
        if unknown.size:
            raise invalid_argument(
                "ids", f"ids in [0, {len(self.tokens)}) (this vocabulary's size)", f"ids {unknown[:5].tolist()}"
            )
        return " ".join(self.tokens[i] for i in ids.ravel() if i > 1)

    def save(self, path, overwrite: bool = False) -> None:
        """Writes `{"tokens": [...], "pad_id": 0, "cls_id": 1}`; an existing file only with `overwrite=True`."""
        content = {"tokens": self.tokens, "pad_id": 0, "cls_id": 1}
        write_atomically(
            os.fspath(path), json.dumps(content, indent=1).encode(), overwrite=boolean("overwrite", overwrite)
        )

    @classmethod
    def load(cls, path) -> Vocabulary:
        """The vocabulary `save` wrote to `path`.

        Raises:
            OSError: the file cannot be read (FileNotFoundError, IsADirectoryError, ...).
            ValueError: naming the file, if it is not a vocabulary: empty, not UTF-8 text, not JSON (or
                truncated), not `{"tokens": [...]}`, not starting with `<pad>`, `<cls>`, or with unusable tokens.
        """
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as file:
                content = json.load(file)
        except UnicodeDecodeError as error:
            byte = error.object[error.start]
            raise _not_a_vocabulary(path, f"it is not UTF-8 text (byte {error.start} is {byte:#04x})") from None
        except json.JSONDecodeError as error:
            problem = "it is empty" if not error.doc.strip() else "it is not valid JSON (or it was cut short)"
            raise _not_a_vocabulary(
                path, f"{problem}: {error.msg} at line {error.lineno}, column {error.colno}"
            ) from None
        tokens = content.get("tokens") if isinstance(content, dict) else None
        if not isinstance(tokens, list):
            raise _not_a_vocabulary(path, f'it holds a JSON {type(content).__name__}, not {{"tokens": [...]}}')
        if tokens[:2] != [PAD, CLS] or (content.get("pad_id", 0), content.get("cls_id", 1)) != (0, 1):
            raise _not_a_vocabulary(path, f"its tokens must start with {PAD!r} (pad_id 0), {CLS!r} (cls_id 1)")
        try:
            return cls(tokens[2:])
        except ValueError as error:
            raise _not_a_vocabulary(path, str(error)) from None


def _not_a_vocabulary(path: str, problem: str) -> ValueError:
    return ValueError(f"{path} is not a keras_sparse vocabulary (as Vocabulary.save writes): {problem}.")
