"""Far retrieval: which digit is marked near the far end of a long sequence? (10 classes)

The classifier reads position 0 (`<cls>`); the marked digit sits in the last eighth of the
sequence, thousands of positions away at long lengths. Attention must reach across the whole
sequence: a sliding window cannot (chance, 10%); global or random blocks can.
"""

from __future__ import annotations

import numpy as np

from keras_sparse.datasets.listops import DIGITS, TaskData, task_data
from keras_sparse.datasets.vocabulary import Vocabulary
from keras_sparse.validation import integer, non_negative_int, positive_int

MARK = "#"
FILLER = tuple("abcdefghij")
VOCABULARY = Vocabulary([MARK, *DIGITS, *FILLER])


def far_retrieval(num_examples: int, seq_len: int = 1024, seed: int = 0) -> TaskData:
    """Sequences of filler letters with `# d` somewhere in the last eighth; the label is `d`.

    Digits appear nowhere else, and labels are balanced over 0-9.

    Args:
        num_examples: how many (1 or more; 0 raises a ValueError rather than return an empty task).
        seq_len: tokens per example, `<cls>` included (at least 32).
        seed: the same seed gives the same examples.

    Example:

    >>> data = far_retrieval(3, seq_len=32, seed=0)
    >>> data.inputs.shape, data.num_classes, data.labels.tolist()
    ((3, 32), 10, [0, 1, 2])
    """
    num_examples = positive_int("num_examples", num_examples)
    seq_len = integer("seq_len", seq_len, at_least=32)
    rng = np.random.default_rng(non_negative_int("seed", seed))
    body = seq_len - 1  # after <cls>
    texts = []
    labels = np.arange(num_examples, dtype=np.int32) % 10
    for label in labels:
        words = [FILLER[i] for i in rng.integers(len(FILLER), size=body)]
        where = rng.integers(body - body // 8, body - 1)
        words[where : where + 2] = [MARK, DIGITS[label]]
        texts.append(" ".join(words))
    return task_data(texts, labels, VOCABULARY, seq_len, num_classes=10)
