import numpy as np
import pytest

import keras_sparse as ks
from tests.patterns.test_definitions import PATTERNS


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("causal", [False, True])
def test_pairs_are_the_masks_nonzeros_for_every_head(pattern, causal):
    seq_len, heads = 300, 3  # over one chunk of rows
    pairs = ks.kernels.plan_token_pairs(pattern, seq_len, heads, causal=causal)
    mask = pattern.mask(seq_len) & (np.tri(seq_len, dtype=bool) if causal else True)
    i, j = np.nonzero(mask)
    for head in range(heads):
        rows = pairs.query_rows // seq_len == head
        np.testing.assert_array_equal(pairs.query_rows[rows] - head * seq_len, i)
        np.testing.assert_array_equal(pairs.key_rows[rows] - head * seq_len, j)
    assert pairs.nnz == heads * mask.sum()
