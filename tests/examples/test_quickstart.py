"""A tiny run of the quickstart: it trains, exports, verifies in LiteRT and writes its files atomically."""

import sys

sys.path.insert(0, "examples")

import quickstart  # noqa: E402


def test_quickstart_trains_exports_and_verifies(tmp_path):
    quickstart.main(["--seq-len", "128", "--examples", "64", "--epochs", "1", "--out", str(tmp_path)])
    flatbuffer = (tmp_path / "model_float32.tflite").read_bytes()
    assert flatbuffer[4:8] == b"TFL3"
    assert "max relative error" in (tmp_path / "report.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_float32.tflite", "report.md"]


def test_task_label_is_the_first_token():
    tokens, labels = quickstart.make_task(50, 32, num_classes=3, vocab_size=16, seed=0)
    assert tokens.shape == (50, 32) and (tokens[:, 0] == labels + quickstart.NUM_SPECIAL).all()
    assert set(labels) == {0, 1, 2}
