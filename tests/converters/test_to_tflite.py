"""to_tflite: every mode verified against Keras; builtins only; clear refusals; nothing written unless verified."""

import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_sparse as ks
from converters import ConversionError, VerificationError, predict, to_tflite
from tests.converters.conftest import SEQ_LEN, build_classifier, dict_input_data, dict_input_model, retrieval_task


@pytest.mark.parametrize("quantization", ["float32", "float16", "dynamic", "int8"])
def test_every_mode_is_verified_against_keras(trained_classifier, held_out, tmp_path, quantization):
    x_test, _ = held_out
    calibration, _ = retrieval_task(200, seed=2)
    result = to_tflite(
        trained_classifier,
        tmp_path / "m.tflite",
        quantization=quantization,
        representative_data=calibration,
        verification_data=x_test,
    )
    assert result.path.read_bytes()[4:8] == b"TFL3"
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in result.ops)
    assert result.argmax_agreement >= 0.99 and result.samples == 64
    assert result.max_relative_error < {"float32": 1e-4, "float16": 1e-2, "dynamic": 0.05, "int8": 0.15}[quantization]
    assert "max relative error" in result.report()
    details = Interpreter(model_path=str(result.path)).get_input_details()[0]
    assert tuple(details["shape"]) == (1, SEQ_LEN) and details["dtype"] == np.int32  # token ids stay int32


def test_int8_file_is_smaller_with_int8_output(trained_classifier, held_out, tmp_path):
    calibration, _ = retrieval_task(200, seed=2)
    float32 = to_tflite(trained_classifier, tmp_path / "f.tflite", verification_data=held_out[0])
    int8 = to_tflite(trained_classifier, tmp_path / "q.tflite", quantization="int8", representative_data=calibration)
    assert int8.size_bytes < float32.size_bytes
    assert Interpreter(model_path=str(int8.path)).get_output_details()[0]["dtype"] == np.int8


def test_int8_with_float_outputs_keeps_float_logits_around_an_int8_body(trained_classifier, held_out, tmp_path):
    calibration, _ = retrieval_task(200, seed=2)
    result = to_tflite(
        trained_classifier,
        tmp_path / "q.tflite",
        quantization="int8",
        representative_data=calibration,
        verification_data=held_out[0],
        float_outputs=True,
    )
    interpreter = Interpreter(model_path=str(result.path))
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    assert interpreter.get_input_details()[0]["dtype"] == np.int32
    assert "FULLY_CONNECTED" in result.ops and "DEQUANTIZE" in result.ops  # int8 weights and activations inside
    np.testing.assert_allclose(
        predict(result.path, held_out[0][:4]),
        trained_classifier.predict(held_out[0][:4], verbose=0),
        atol=0.15 * np.abs(trained_classifier.predict(held_out[0][:4], verbose=0)).max(),
    )


def test_sparse_int8_weights_that_xnnpack_refuses_are_named_and_not_written(tmp_path):
    x = keras.Input((64,))
    model = keras.Model(x, keras.layers.Dense(10)(keras.layers.Dense(256, activation="relu")(x)))
    for layer in model.layers[1:]:
        ks.pruning.NOfM(2, 4).prune(layer, 0.5)
    data = np.random.default_rng(0).normal(size=(50, 64)).astype("float32")
    with pytest.raises(ConversionError, match="XNNPACK.*without sparse_weights"):
        to_tflite(model, tmp_path / "q.tflite", quantization="int8", representative_data=data, sparse_weights=True)
    assert not (tmp_path / "q.tflite").exists()
    assert to_tflite(model, tmp_path / "f.tflite", sparse_weights=True).size_bytes < 0.7 * 4 * model.count_params()


@pytest.mark.parametrize("full_integer", [False, True])
def test_int8_of_a_masked_pattern_with_padding_converts(tmp_path, full_integer):
    """The TF 2.21 int8 quantizer aborted the process on LOGICAL_AND of a static block mask and key padding."""
    model = ks.models.SparseTransformerClassifier(
        17, 128, 1, 32, 2, 64, ks.patterns.SlidingWindow(window_size=48, block_size=32), 10
    )
    tokens = ks.datasets.listops(40, 128, seed=0).inputs
    bounds = {"max_relative_error": 1.0, "min_argmax_agreement": 0.0}  # untrained: this checks it converts and runs
    result = to_tflite(
        model,
        tmp_path / "w.tflite",
        quantization="int8",
        representative_data=tokens,
        float_outputs=True,
        full_integer=full_integer,
        **bounds,
    )
    assert "GATHER" in result.ops and "SELECT_V2" not in result.ops  # masks are 0/1 factors, not tf.where


def float_input_model(pattern):
    keras.utils.set_random_seed(0)
    x = keras.Input((SEQ_LEN, 16))
    h = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=8, pattern=pattern)(x, x)
    return keras.Model(x, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(x + h)))


@pytest.mark.parametrize("full_integer", [False, True])
def test_int8_of_lsh_attention(tmp_path, full_integer):
    """LSH's masks once held a 6-D STRIDED_SLICE that the int8 converter rejected."""
    data = np.random.default_rng(0).normal(size=(64, SEQ_LEN, 16)).astype("float32")
    model = float_input_model(ks.patterns.LSH(4, num_hashes=2, chunk_size=32))
    result = to_tflite(  # untrained: near-tied logits, so argmax agreement is loose
        model,
        tmp_path / "m.tflite",
        quantization="int8",
        representative_data=data,
        min_argmax_agreement=0.9,
        full_integer=full_integer,
    )
    assert "TOPK_V2" in result.ops and result.max_relative_error < 0.15


def test_int16x8_of_a_block_exact_model(tmp_path):
    data = np.random.default_rng(0).normal(size=(100, SEQ_LEN, 16)).astype("float32")
    model = float_input_model(ks.patterns.BigBird(32, num_global_blocks=1, num_random_blocks=1))
    result = to_tflite(
        model, tmp_path / "m.tflite", quantization="int16x8", representative_data=data, min_argmax_agreement=0.9
    )
    assert result.max_relative_error < 0.02


def test_int16x8_of_a_model_with_keras_layer_normalization(tmp_path):
    """Keras's LayerNormalization emits NEG, which 16x8 lacks; the converter's exportable copy does not."""
    keras.utils.set_random_seed(0)
    x = keras.Input((SEQ_LEN, 16))
    pattern = ks.patterns.BigBird(32, num_global_blocks=1, num_random_blocks=1)
    h = keras.layers.LayerNormalization()(x + ks.layers.SparseMultiHeadAttention(2, 8, pattern=pattern)(x, x))
    model = keras.Model(x, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(h)))
    data = np.random.default_rng(0).normal(size=(100, SEQ_LEN, 16)).astype("float32")
    result = to_tflite(
        model, tmp_path / "m.tflite", quantization="int16x8", representative_data=data, min_argmax_agreement=0.9
    )
    assert "NEG" not in result.ops and result.max_relative_error < 0.02


@pytest.mark.parametrize("pattern", [ks.patterns.SlidingWindow(24, block_size=32), ks.patterns.Strided(16)])
def test_int16x8_of_masked_blocks(tmp_path, pattern):
    """Masked blocks once needed SELECT_V2, which 16x8 lacks; masks are now multiplied in."""
    data = np.random.default_rng(0).normal(size=(100, SEQ_LEN, 16)).astype("float32")
    model = float_input_model(pattern)
    result = to_tflite(  # untrained: near-tied logits, so argmax agreement is loose
        model, tmp_path / "m.tflite", quantization="int16x8", representative_data=data, min_argmax_agreement=0.9
    )
    assert "SELECT_V2" not in result.ops and result.max_relative_error < 0.02


def test_int16x8_of_lsh_names_the_comparison_and_writes_nothing(tmp_path):
    data = np.random.default_rng(0).normal(size=(50, SEQ_LEN, 16)).astype("float32")
    model = float_input_model(ks.patterns.LSH(4, num_hashes=2, chunk_size=32))
    with pytest.raises(ConversionError, match="Equal in layer .*sparse_multi_head_attention.*use int8"):
        to_tflite(model, tmp_path / "m.tflite", quantization="int16x8", representative_data=data)
    assert list(tmp_path.iterdir()) == []


def test_int16x8_of_an_encoder_with_its_own_layer_normalization(tmp_path):
    """The encoder's norms are Keras's (NEG, SQUARED_DIFFERENCE: no 16x8 kernels); the converter swaps them."""
    keras.utils.set_random_seed(0)
    x = keras.Input((SEQ_LEN, 16))
    encoder = ks.layers.SparseTransformerEncoder(2, 32, pattern=ks.patterns.SlidingWindow(24, block_size=32))
    model = keras.Model(x, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(encoder(x))))
    data = np.random.default_rng(0).normal(size=(100, SEQ_LEN, 16)).astype("float32")
    result = to_tflite(  # untrained: near-tied logits, so argmax agreement is loose
        model, tmp_path / "m.tflite", quantization="int16x8", representative_data=data, min_argmax_agreement=0.9
    )
    assert not {"NEG", "SQUARED_DIFFERENCE", "SELECT_V2"} & set(result.ops) and result.max_relative_error < 0.02


def test_int16x8_refuses_token_inputs(trained_classifier, tmp_path):
    with pytest.raises(ValueError, match="`quantization`.*int8"):
        to_tflite(trained_classifier, tmp_path / "m.tflite", quantization="int16x8", representative_data=held_tokens())


def held_tokens():
    return retrieval_task(20, seed=3)[0]


class Determinant(keras.layers.Layer):
    def call(self, x):
        return tf.linalg.det(x[:, :4, :4])[:, None]


def test_an_op_without_builtin_is_refused_naming_op_and_layer(tmp_path):
    x = keras.Input((8, 8))
    model = keras.Model(x, Determinant(name="determinant")(x))
    with pytest.raises(ConversionError, match="MatrixDeterminant in layer determinant"):
        to_tflite(model, tmp_path / "m.tflite")
    assert list(tmp_path.iterdir()) == []


def test_tf_sparse_kernel_switches_to_its_export_form(held_out, tmp_path):
    model = build_classifier(ks.patterns.SlidingWindow(16, global_tokens=(0,)), implementation="sparse")
    result = to_tflite(model, tmp_path / "m.tflite", verification_data=held_out[0])
    assert "UNSORTED_SEGMENT_SUM" in result.ops and result.max_relative_error < 1e-4


def test_existing_files_are_kept_unless_overwrite(trained_classifier, held_out, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        to_tflite(trained_classifier, path, verification_data=held_out[0])
    assert path.read_bytes() == b"mine"
    to_tflite(trained_classifier, path, verification_data=held_out[0], overwrite=True)
    assert path.read_bytes()[4:8] == b"TFL3"


def test_a_file_failing_verification_is_not_written(trained_classifier, held_out, tmp_path):
    calibration, _ = retrieval_task(200, seed=2)
    with pytest.raises(VerificationError, match="was not written"):
        to_tflite(
            trained_classifier,
            tmp_path / "m.tflite",
            quantization="int8",
            representative_data=calibration,
            max_relative_error=1e-9,
        )
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left behind


def test_representative_data_forms_give_the_same_file(trained_classifier, tmp_path):
    calibration, _ = retrieval_task(40, seed=2)
    forms = {
        "array": calibration,
        "dataset": tf.data.Dataset.from_tensor_slices(calibration).batch(8),
        "generator": (sample for sample in calibration),
    }
    files = {
        name: to_tflite(
            trained_classifier,
            tmp_path / f"{name}.tflite",
            quantization="int8",
            representative_data=data,
            verification_data=calibration,
        ).path.read_bytes()
        for name, data in forms.items()
    }
    assert files["array"] == files["dataset"] == files["generator"]


def test_seq_len_fixes_a_dynamic_length_and_must_agree(tmp_path):
    x = keras.Input((None, 8))
    model = keras.Model(x, keras.layers.Dense(3)(x))
    result = to_tflite(model, tmp_path / "m.tflite", seq_len=32)
    assert tuple(Interpreter(model_path=str(result.path)).get_input_details()[0]["shape"]) == (1, 32, 8)
    with pytest.raises(ValueError, match="`seq_len`"):
        to_tflite(model, tmp_path / "n.tflite")
    with pytest.raises(ValueError, match="`seq_len`"):
        to_tflite(float_input_model(ks.patterns.BigBird(32)), tmp_path / "o.tflite", seq_len=64)


def test_bad_arguments_name_themselves(trained_classifier, tmp_path):
    for quantization in ("int4", ["int8"], None):  # a list raised "unhashable type", naming nothing
        with pytest.raises(ValueError, match="`quantization`"):
            to_tflite(trained_classifier, tmp_path / "m.tflite", quantization=quantization)
    with pytest.raises(ValueError, match="`representative_data`"):
        to_tflite(trained_classifier, tmp_path / "m.tflite", quantization="int8")
    with pytest.raises(ValueError, match="`verification_data`"):
        to_tflite(trained_classifier, tmp_path / "m.tflite")


def test_numpy_scalars_are_taken_as_numbers_and_flags(tmp_path):
    x = keras.Input((None, 4))
    model = keras.Model(x, keras.layers.Dense(3)(x))
    bounds = dict(max_relative_error=np.float32(0.5), min_argmax_agreement=np.float64(0.5))
    result = to_tflite(model, tmp_path / "m.tflite", seq_len=np.int64(8), overwrite=np.bool_(False), **bounds)
    assert result.max_relative_error < 1e-5


def test_sparse_weight_encoding_shrinks_a_pruned_model_and_reports_it(tmp_path):
    keras.utils.set_random_seed(0)
    x = keras.Input((16, 256))
    model = keras.Model(x, keras.layers.Dense(256)(x))
    kernel, bias = model.layers[1].get_weights()
    kernel[np.random.default_rng(0).random(kernel.shape) < 0.9] = 0.0  # 90% unstructured sparsity
    model.layers[1].set_weights([kernel, bias])
    result = to_tflite(model, tmp_path / "sparse.tflite", sparse_weights=True)
    assert result.size_bytes < 0.5 * result.size_without_sparse_encoding
    assert "sparse weight encoding saved" in result.report()


def test_long_calibrations_show_a_progress_bar(tmp_path, capsys):
    x = keras.Input((8, 4))
    model = keras.Model(x, keras.layers.Dense(2)(x))
    data = np.random.default_rng(0).normal(size=(120, 8, 4)).astype("float32")
    to_tflite(model, tmp_path / "m.tflite", quantization="int8", representative_data=data)
    assert "120/120" in capsys.readouterr().out


@pytest.mark.parametrize("quantization, bound", [("float32", 1e-5), ("int8", 0.15)])
def test_dict_inputs_convert_to_a_file_with_named_inputs(tmp_path, quantization, bound):
    """keras-hub models take {"token_ids", "padding_mask", "segment_ids"}: so does the file, by name."""
    model = dict_input_model()
    held = dict_input_data(16, seed=1)
    result = to_tflite(
        model,
        tmp_path / "m.tflite",
        quantization=quantization,
        representative_data=tf.data.Dataset.from_tensor_slices(dict_input_data(64, seed=0)).batch(8),
        verification_data=held,
        min_argmax_agreement=0.9,  # untrained: near ties
    )
    names = sorted(d["name"] for d in Interpreter(model_path=str(result.path)).get_input_details())
    assert names == ["padding_mask", "segment_ids", "token_ids"]
    expected = np.asarray(model.predict(held, verbose=0))
    assert np.abs(predict(result.path, held) - expected).max() <= bound * np.abs(expected).max()


def test_float64_calibration_gives_the_float32_file(tmp_path):
    keras.utils.set_random_seed(0)
    x = keras.Input((8, 4))
    model = keras.Model(x, keras.layers.Dense(3)(x))
    data = np.random.default_rng(0).normal(size=(32, 8, 4))
    files = [
        to_tflite(
            model, tmp_path / f"{dtype}.tflite", quantization="int8", representative_data=data.astype(dtype)
        ).path.read_bytes()
        for dtype in ("float64", "float32")
    ]
    assert files[0] == files[1]


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda tmp: tmp / "missing" / "m.tflite", FileNotFoundError),
        (lambda tmp: (tmp / "file").write_bytes(b"") or tmp / "file" / "m.tflite", NotADirectoryError),
        (lambda tmp: (tmp / "dir").mkdir() or tmp / "dir", IsADirectoryError),
        (lambda tmp: tmp / ("m" * 300), OSError),
    ],
)
def test_output_paths_are_checked_before_the_work(tmp_path, monkeypatch, make, error):
    module = sys.modules["converters.to_tflite"]  # `converters.to_tflite` is the function
    monkeypatch.setattr(module, "convert_verified", lambda *args, **kwargs: pytest.fail("converted before checking"))
    x = keras.Input((4,))
    with pytest.raises(error, match="Cannot write `path`"):
        to_tflite(keras.Model(x, x), make(tmp_path))


def test_a_file_name_of_250_characters_is_written(tmp_path):
    x = keras.Input((4,))
    result = to_tflite(keras.Model(x, keras.layers.Dense(2)(x)), tmp_path / ("m" * 243 + ".tflite"))
    assert result.path.read_bytes()[4:8] == b"TFL3" and len(result.path.name) == 250


def test_the_report_says_how_many_samples_of_how_many_were_used(tmp_path):
    """VERIFICATION_SAMPLES and CALIBRATION_SAMPLES cut the data: the result and the report say so."""
    keras.utils.set_random_seed(0)
    x = keras.Input((16, 4))
    model = keras.Model(x, keras.layers.Dense(2)(x))
    data = np.random.default_rng(0).normal(size=(250, 16, 4)).astype("float32")
    result = to_tflite(model, tmp_path / "m.tflite", "int8", data, verification_data=data[:100])
    assert (result.samples, result.samples_given, result.calibration_samples, result.calibration_given) == (
        64,
        100,
        200,
        250,
    )
    assert "on 64 of 100 inputs" in result.report() and "calibrated on 200 of 250 samples" in result.report()
    float_result = to_tflite(model, tmp_path / "f.tflite", verification_data=data[:10])
    assert "on 10 inputs" in float_result.report() and "calibrated" not in float_result.report()
