"""Far match: do two marked digits, one near each end of a long sequence, match? (binary, balanced)

The answer needs both ends at once, so attention must reach across the whole
sequence: a sliding window cannot (chance, 50%), global or random blocks can.
"""

from __future__ import annotations

import numpy as np

from keras_sparse.datasets.listops import DIGITS, TaskData
from keras_sparse.datasets.vocabulary import Vocabulary

MARK = "#"
FILLER = tuple("abcdefghij")
VOCABULARY = Vocabulary([MARK, *DIGITS, *FILLER])


def far_match(num_examples: int, seq_len: int = 1024, seed: int = 0) -> TaskData:
    """Sequences of filler letters with `# d1` in the first eighth and `# d2` in the last; label `d1 == d2`.

    Filler letters carry no information (digits never appear unmarked).

    Args:
        num_examples: how many (half match).
        seq_len: tokens per example, `<cls>` included (at least 32).
        seed: the same seed gives the same examples.

    Example:

    >>> data = far_match(2, seq_len=32, seed=0)
    >>> data.inputs.shape, data.num_classes
    ((2, 32), 2)
    """
    if seq_len < 32:
        raise ValueError(f"Received an invalid value for argument `seq_len`, expected >= 32. Received: {seq_len}")
    rng = np.random.default_rng(seed)
    body = seq_len - 1  # after <cls>
    eighth = body // 8
    texts, labels = [], []
    for index in range(num_examples):
        words = [FILLER[i] for i in rng.integers(len(FILLER), size=body)]
        first = rng.integers(10)
        match = index % 2 == 0
        second = first if match else (first + rng.integers(1, 10)) % 10
        left = rng.integers(0, eighth - 1)
        right = rng.integers(body - eighth, body - 1)
        words[left : left + 2] = [MARK, DIGITS[first]]
        words[right : right + 2] = [MARK, DIGITS[second]]
        texts.append(" ".join(words))
        labels.append(int(match))
    order = rng.permutation(num_examples)
    texts = [texts[i] for i in order]
    inputs = np.stack([VOCABULARY.encode(text, seq_len) for text in texts])
    return TaskData(inputs, np.array(labels, dtype=np.int32)[order], VOCABULARY, tuple(texts), num_classes=2)
