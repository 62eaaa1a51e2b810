"""`AxialPositionEmbedding` against its definition, position by position."""

import keras
import numpy as np
import pytest

import keras_sparse as ks


@pytest.mark.parametrize(
    "axial_shape, axial_dims, seq_len", [((4, 8), (4, 4), 32), ((4, 8), (6, 2), 27), ((3, 5), (1, 7), 1)]
)
def test_position_p_is_row_table_at_p_over_columns_then_column_table_at_p_mod_columns(axial_shape, axial_dims, seq_len):
    layer = ks.layers.AxialPositionEmbedding(axial_shape, axial_dims)
    out = np.asarray(layer(np.zeros((2, seq_len, sum(axial_dims)), "float32")))
    rows, columns = layer.row_table.numpy(), layer.column_table.numpy()
    for p in range(seq_len):
        expected = np.concatenate([rows[p // axial_shape[1]], columns[p % axial_shape[1]]])
        np.testing.assert_array_equal(out[0, p], expected)
        np.testing.assert_array_equal(out[1, p], expected)


def test_config_round_trip_and_errors():
    layer = ks.layers.AxialPositionEmbedding((4, 8), (4, 4), name="axial")
    assert ks.layers.AxialPositionEmbedding.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="`axial_shape`"):
        ks.layers.AxialPositionEmbedding((4,), (4, 4))
    with pytest.raises(ValueError, match="`axial_dims`.*2.5"):  # was truncated to 2
        ks.layers.AxialPositionEmbedding((4, 8), (2.5, 4))
    assert ks.layers.AxialPositionEmbedding(np.array([4, 8]), (np.int64(4), 4)).get_config()["axial_shape"] == (4, 8)
    with pytest.raises(ValueError, match="axial_dims"):
        ks.layers.AxialPositionEmbedding((4, 8), (4, 4))(np.zeros((1, 8, 6), "float32"))
    with pytest.raises(ValueError, match="at most 32"):
        ks.layers.AxialPositionEmbedding((4, 8), (4, 4))(np.zeros((1, 33, 8), "float32"))


def test_tables_train():
    x = keras.Input((16, 4))
    model = keras.Model(x, x + ks.layers.AxialPositionEmbedding((4, 4), (2, 2))(x))
    model.compile("sgd", "mse")
    before = [w.numpy().copy() for w in model.weights]
    model.fit(np.zeros((4, 16, 4)), np.ones((4, 16, 4)), verbose=0)
    assert all((b != w.numpy()).any() for b, w in zip(before, model.weights, strict=True))
