"""Pattern.plot writes its PNG atomically and never over an existing file unless asked."""

import pytest

import keras_sparse as ks


def test_plot_keeps_an_existing_file_unless_overwrite(tmp_path):
    path = tmp_path / "pattern.png"
    path.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ks.patterns.SlidingWindow(8).plot(32, path)
    assert path.read_bytes() == b"mine"
    ks.patterns.SlidingWindow(8).plot(32, path, overwrite=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_names_an_unwritable_path_before_drawing(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "subplots", lambda *args, **kwargs: pytest.fail("drew before checking the path"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ks.patterns.SlidingWindow(8).plot(32, tmp_path / "missing" / "pattern.png")
    with pytest.raises(ValueError, match="`overwrite`"):
        ks.patterns.SlidingWindow(8).plot(32, tmp_path / "p.png", overwrite="no")
