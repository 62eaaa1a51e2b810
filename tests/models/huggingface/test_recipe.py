"""docs/checkpoints.md's recipe runs as written, on the tiny Longformer checkpoint instead of a downloaded one."""

import pathlib
import re

import pytest

from .fixtures import ROOT

PAGE = pathlib.Path(__file__).parents[3] / "docs" / "checkpoints.md"
SETTINGS = 'folder, seq_len = "longformer-base-4096", 4096'
LEARNING_RATE = "keras.optimizers.Adam(3e-5)"
EPOCHS = "epochs=2"


@pytest.mark.slow  # a fit, a finalize and an int8 conversion: about a minute on 2 shared cores
def test_recipe_runs_from_a_folder_to_an_int8_file(tmp_path, monkeypatch):
    (code,) = re.findall(r"```python\n(.+?)\n```", PAGE.read_text(), flags=re.S)
    assert SETTINGS in code and LEARNING_RATE in code and EPOCHS in code
    code = code.replace(SETTINGS, f'folder, seq_len = "{ROOT / "longformer"}", 40')
    # The tiny random checkpoint must learn the stand-in task for the int8 file's argmaxes to be checkable.
    code = code.replace(LEARNING_RATE, "keras.optimizers.Adam(3e-3)").replace(EPOCHS, "epochs=6")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "recipe"}
    exec(compile(code, str(PAGE), "exec"), namespace)
    assert namespace["small"].count_params() < namespace["model"].count_params()
    assert (tmp_path / "fine_tuned.keras").exists() and (tmp_path / "fine_tuned_int8.tflite").exists()
    assert namespace["result"].quantization == "int8"
