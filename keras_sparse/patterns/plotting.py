"""Drawing a pattern's mask with matplotlib (an optional dependency)."""

from __future__ import annotations

import io

import numpy as np

from keras_sparse.files import check_output_file, write_atomically
from keras_sparse.validation import boolean


def plot_pattern(pattern, seq_len: int, path=None, title: str | None = None, overwrite: bool = False):
    """Draws `pattern.mask(seq_len)` (one panel per head, block grid over it); writes a PNG atomically if `path`.

    An existing file at `path` is kept unless `overwrite` (FileExistsError, raised before drawing, as are
    the other errors of `keras_sparse.files.check_output_file`).
    """
    overwrite = boolean("overwrite", overwrite)
    if path is not None:
        path = check_output_file(path, overwrite)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("Pattern.plot needs matplotlib: pip install 'keras-sparse[plot]'") from error
    mask = pattern.mask(seq_len)
    heads = mask if mask.ndim == 3 else mask[None]
    block = pattern.resolve_block_size()
    figure, axes = plt.subplots(1, len(heads), figsize=(3.2 * len(heads), 3.4), squeeze=False)
    stats = pattern.describe(seq_len)
    for index, (axis, head_mask) in enumerate(zip(axes[0], heads, strict=True)):
        axis.imshow(head_mask, cmap="Blues", interpolation="nearest", vmin=0, vmax=1.4)
        for edge in np.arange(block, seq_len, block) - 0.5:
            axis.axhline(edge, color="0.75", linewidth=0.4)
            axis.axvline(edge, color="0.75", linewidth=0.4)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_xlabel("key")
        axis.set_ylabel("query" if index == 0 else "")
        if len(heads) > 1:
            axis.set_title(f"head {index}", fontsize=9)
    title = title or type(pattern).__name__
    figure.suptitle(f"{title}, L={seq_len}, density {stats['density']:.2f}", fontsize=10)
    figure.tight_layout()
    if path is not None:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        write_atomically(path, buffer.getvalue(), overwrite=bool(overwrite))
        plt.close(figure)
    return figure
