"""Writing files so that nothing a user wrote is lost: atomic replacement, no silent overwrite."""

from __future__ import annotations

import os
import pathlib
import tempfile


def write_atomically(path, data: bytes, overwrite: bool = False) -> pathlib.Path:
    """Writes `data` to a temporary file beside `path`, then renames it over `path`.

    Raises FileExistsError if `path` exists and `overwrite` is False: nothing is replaced silently.

    Example:

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_atomically(folder / "a.bin", b"1").read_bytes()
    b'1'
    """
    path = pathlib.Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} exists. Pass overwrite=True (or --overwrite) to replace it, or choose another path."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(data)
    os.replace(handle.name, path)
    return path
