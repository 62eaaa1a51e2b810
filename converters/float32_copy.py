"""A float32 copy of a model whose layers compute in float16 or bfloat16 (Keras mixed precision), for conversion.

TFLite builtins take float32 graphs: traced under a `mixed_float16` policy, a model's AddV2, BatchMatMulV2, ...
are float16 ops without builtin kernels. The copy has the same config with float32 dtype policies and the
same weights, so it computes the model's function without float16 rounding.
"""

from __future__ import annotations

import contextlib

import keras

LOW_PRECISION = ("float16", "bfloat16")
PRECISION_TOLERANCE = {"float16": 1e-2, "bfloat16": 5e-2}
"""How far (relative) a model computing in each dtype may stand from its float32 copy: float16 keeps 11
significant bits (about 5e-4 relative per rounding), bfloat16 8 (about 4e-3); a layer stack compounds them."""


def low_precision(model: keras.layers.Layer) -> str | None:
    """The lowest compute dtype among the model's layers ("float16" or "bfloat16"), or None if all are float32."""
    dtypes = {layer.compute_dtype for layer in model._flatten_layers()}
    return next((dtype for dtype in LOW_PRECISION if dtype in dtypes), None)


@contextlib.contextmanager
def float32_global_policy():
    """Sets Keras's global dtype policy to float32 inside the block (layers made there compute in float32)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` rebuilt from its config with float32 dtype policies, holding the same weights (as float32).

    Raises:
        ValueError: the model cannot be rebuilt from its config (a subclassed model without get_config), naming
            the dtype policy and the fix.
    """
    try:
        config = _as_float32(keras.saving.serialize_keras_object(model))
        config.pop("compile_config", None)  # the copy is only called
        with float32_global_policy():
            copy = keras.saving.deserialize_keras_object(config)
            copy.set_weights(model.get_weights())
    except Exception as error:
        raise ValueError(
            f"Received an invalid value for argument `model`: its layers compute in {low_precision(model)} (dtype "
            "policy, e.g. keras.mixed_precision.set_global_policy('mixed_float16')), TFLite takes float32 graphs, "
            f"and the model could not be copied in float32 ({type(error).__name__}: {error}). Fix: build the model "
            "under keras.mixed_precision.set_global_policy('float32') and load its weights "
            "(model.set_weights(trained.get_weights())), then convert that."
        ) from error
    return copy


def _as_float32(config):
    """The serialized config with every float16/bfloat16 dtype (policy or tensor dtype) made float32."""
    if isinstance(config, list):
        return [_as_float32(item) for item in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "DTypePolicy" and _low(config.get("config", {}).get("name")):
        return {**config, "config": {**config["config"], "name": "float32"}}
    return {
        key: "float32" if key == "dtype" and isinstance(value, str) and _low(value) else _as_float32(value)
        for key, value in config.items()
    }


def _low(name) -> bool:
    return isinstance(name, str) and name.removeprefix("mixed_") in LOW_PRECISION
