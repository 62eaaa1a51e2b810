"""The quickstart: it trains, exports, verifies in LiteRT, writes its files atomically, and shows its point."""

import sys

sys.path.insert(0, "examples")

import quickstart  # noqa: E402


def test_quickstart_trains_exports_and_verifies(tmp_path):
    quickstart.main(["--seq-len", "128", "--examples", "64", "--epochs", "1", "--out", str(tmp_path)])
    flatbuffer = (tmp_path / "model_float32.tflite").read_bytes()
    assert flatbuffer[4:8] == b"TFL3"
    assert "max relative error" in (tmp_path / "report.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_float32.tflite", "report.md"]


def test_task_label_is_the_first_token_and_never_filler():
    tokens, labels = quickstart.make_task(50, 32, num_classes=3, vocab_size=16, seed=0)
    assert tokens.shape == (50, 32) and (tokens[:, 0] == labels + quickstart.NUM_SPECIAL).all()
    assert (tokens[:, 1:] >= quickstart.NUM_SPECIAL + 3).all()
    assert set(labels) == {0, 1, 2}


def test_big_bird_solves_the_task_and_a_sliding_window_cannot(tmp_path):
    """The class sits 255 tokens from where it is read: only BigBird's global block reaches it."""
    args = ["--seq-len", "256", "--examples", "1024", "--epochs", "3", "--out"]
    big_bird = quickstart.main([*args, str(tmp_path / "big_bird")])
    window = quickstart.main([*args, str(tmp_path / "window"), "--pattern", "window"])
    assert big_bird > 0.8 and window < 0.5, (big_bird, window)
