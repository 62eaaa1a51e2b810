"""to_micro: a verified TFLite Micro bundle whose C sources compile and whose arena is measured."""

import re
import shutil
import subprocess

import numpy as np
import pytest

import keras_sparse as ks
from converters import ConversionError, to_micro
from converters.to_micro import smallest_arena
from tests.converters.conftest import build_classifier, retrieval_task


@pytest.fixture(scope="module")
def bundle(trained_classifier, held_out, tmp_path_factory):
    calibration, _ = retrieval_task(200, seed=2)
    folder = tmp_path_factory.mktemp("micro")
    return to_micro(trained_classifier, folder, calibration, name="retrieval", verification_data=held_out[0])


def test_bundle_files_ops_and_agreement(bundle):
    assert sorted(p.name for p in bundle.folder.iterdir()) == sorted(bundle.files)
    resolver = (bundle.folder / "retrieval_op_resolver.h").read_text()
    assert f"MicroMutableOpResolver<{len(bundle.ops)}>" in resolver
    registered = re.findall(r"resolver\.(Add\w+)\(\)", resolver)
    assert len(registered) == len(set(registered)) == len(bundle.ops)
    assert "AddBatchMatMul" in registered and "AddGather" in registered
    assert bundle.max_quantization_steps <= 1
    assert bundle.tflite.argmax_agreement >= 0.99


def test_arena_is_measured_tight_with_its_margin(bundle):
    flatbuffer = (bundle.folder / "retrieval_int8.tflite").read_bytes()
    probe = [retrieval_task(1, seed=4)[0]]
    measured = smallest_arena(flatbuffer, probe)
    assert measured == bundle.measured_arena_bytes
    assert bundle.arena_bytes >= measured * 1.1 and bundle.arena_bytes % 16 == 0
    settings = (bundle.folder / "retrieval_model_settings.h").read_text()
    assert f"constexpr int kTensorArenaSize = {bundle.arena_bytes};" in settings


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ (present on the project's machines)")
def test_generated_c_compiles_and_the_array_is_the_tflite_file(bundle, tmp_path):
    main = tmp_path / "main.cc"
    main.write_text(
        '#include <cstdio>\n#include "retrieval_model_data.h"\n#include "retrieval_model_settings.h"\n'
        'int main() {\n  static_assert(kTensorArenaSize > 0, "arena");\n'
        '  FILE* out = std::fopen("array.bin", "wb");\n'
        "  std::fwrite(g_retrieval_model_data, 1, g_retrieval_model_data_size, out);\n"
        "  std::fclose(out);\n  return (reinterpret_cast<unsigned long>(g_retrieval_model_data) % 16) != 0;\n}\n"
    )
    binary = tmp_path / "dump"
    subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-I",
            str(bundle.folder),
            str(main),
            str(bundle.folder / "retrieval_model_data.cc"),
            "-o",
            str(binary),
        ],
        check=True,
    )
    subprocess.run([str(binary)], cwd=tmp_path, check=True)  # also checks the array is 16-byte aligned
    assert (tmp_path / "array.bin").read_bytes() == (bundle.folder / "retrieval_int8.tflite").read_bytes()


def test_keras_embedding_is_refused_naming_select_and_the_fix(tmp_path):
    """Keras's Embedding wraps negative ids with LESS + SELECT; TFLite Micro has no SELECT kernel."""
    import keras

    model = build_classifier(ks.patterns.BigBird(32, num_random_blocks=1), embedding=keras.layers.Embedding)
    calibration, _ = retrieval_task(50, seed=2)
    with pytest.raises(ConversionError, match="SELECT: .*TokenEmbedding"):
        to_micro(model, tmp_path, calibration, name="keras_embedding", max_relative_error=1e9, min_argmax_agreement=0)
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_is_kept_unless_overwrite(bundle, trained_classifier):
    before = (bundle.folder / "retrieval_model_data.cc").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        to_micro(trained_classifier, bundle.folder, retrieval_task(20, seed=2)[0], name="retrieval")
    assert (bundle.folder / "retrieval_model_data.cc").read_bytes() == before


def test_name_must_be_a_c_identifier(trained_classifier, tmp_path):
    with pytest.raises(ValueError, match="`name`"):
        to_micro(trained_classifier, tmp_path, np.zeros((2, 128), "int32"), name="my model")


def test_fewer_query_blocks_per_step_shrink_the_arena_with_the_same_outputs(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((256, 32))
    pattern = ks.patterns.BigBird(32, num_global_blocks=1, num_random_blocks=1)
    h = ks.layers.SparseMultiHeadAttention(num_heads=4, key_dim=8, pattern=pattern)(x, x)
    model = keras.Model(x, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(x + h)))
    data = np.random.default_rng(0).normal(size=(32, 256, 32)).astype("float32")
    bundles = {
        steps: to_micro(
            model, tmp_path / str(steps), data, max_query_blocks=steps, min_argmax_agreement=0.9
        )  # untrained: near ties
        for steps in (None, 2)
    }
    assert bundles[2].measured_arena_bytes < 0.9 * bundles[None].measured_arena_bytes
    assert bundles[2].tflite.max_relative_error < 0.15
