"""`PruningMask`: the weight constraint that keeps pruned weights at zero and carries its masks in `.keras` files.

Keras's optimizers apply a variable's constraint after every update, so a mask set as
a constraint holds through any optimizer, `tf.distribute` strategy or resumed `fit`
without wrapping the layer; and a constraint is part of the layer's config, so the
masks are saved and loaded with the model by plain `model.save` / `keras.models.load_model`.
The masks themselves are non-trainable variables read inside the compiled train step,
which the pruning callbacks update between steps.
"""

from __future__ import annotations

import base64

import keras
import numpy as np
from keras import ops

ANY_ROLE = "*"
"""The role of a mask that applies to whatever weight the constraint is given (a Dense's kernel or bias)."""


def _pack(kept: np.ndarray) -> str:
    return base64.b64encode(np.packbits(kept.astype(bool).ravel())).decode("ascii")


def _unpack(bits: str, shape) -> np.ndarray:
    flat = np.unpackbits(np.frombuffer(base64.b64decode(bits), dtype=np.uint8))
    return flat[: int(np.prod(shape, dtype=np.int64))].reshape(shape).astype(bool)


def role_of(variable) -> str:
    """The sublayer a weight belongs to: `"query"` for `"mha/query/kernel"`."""
    parts = getattr(variable, "path", "").split("/")
    return parts[-2] if len(parts) >= 2 else ANY_ROLE


@keras.saving.register_keras_serializable(package="keras_sparse")
class PruningMask(keras.constraints.Constraint):
    """`w -> inner(w) * mask`: zeroes the weights one pruning structure removed.

    One constraint may hold masks for several weights, by role: `"*"` for a layer's own
    weight (a Dense's kernel), or a sublayer name (`"query"`, `"key"`, `"value"`,
    `"attention_output"`) when it is the shared `kernel_constraint` of a
    `MultiHeadAttention`, which hands one constraint to all its projections. A mask is
    either the weight's full shape (`axis=None`) or a vector along `axis` (a head, a unit).

    Args:
        structure: the pruning structure that owns the masks ("heads", "neurons", ...).
        masks: `{role: {"axis": int or None, "shape": list, "bits": base64 packed bits}}` (as saved).
        inner: the constraint the weight had before (applied first), or None.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> mask = ks.pruning.PruningMask("neurons")
    >>> mask.set_mask("*", np.array([True, False, True]), axis=-1)
    >>> np.asarray(mask(np.ones((2, 3), "float32")))
    array([[1., 0., 1.],
           [1., 0., 1.]], dtype=float32)
    """

    def __init__(self, structure: str, masks: dict | None = None, inner=None):
        self.structure = structure
        self.inner = keras.constraints.get(inner)
        self._axes: dict[str, int | None] = {}
        self._variables: dict[str, keras.Variable] = {}
        for role, saved in (masks or {}).items():
            self.set_mask(role, _unpack(saved["bits"], saved["shape"]), saved["axis"])

    def set_mask(self, role: str, kept: np.ndarray, axis: int | None = None) -> None:
        """Sets (or replaces) the mask of `role`: True keeps a weight, False zeroes it."""
        kept = np.asarray(kept, dtype=bool)
        if role in self._variables and tuple(self._variables[role].shape) == kept.shape:
            self._variables[role].assign(kept.astype("float32"))
        else:
            self._variables[role] = keras.Variable(
                kept.astype("float32"), trainable=False, name=f"pruning_mask_{self.structure}"
            )
        self._axes[role] = axis

    def kept(self, role: str = ANY_ROLE) -> np.ndarray | None:
        """The mask of `role` as a bool array, or None if this constraint has none."""
        variable = self._variables.get(role)
        return None if variable is None else np.asarray(ops.convert_to_numpy(variable)) > 0.5

    def _role_for(self, variable) -> str:
        role = role_of(variable)
        return role if role in self._variables else ANY_ROLE

    def _broadcastable(self, role: str, rank: int) -> tuple[int, ...] | None:
        """The shape that broadcasts `role`'s mask against a weight of `rank` (None: the mask's own)."""
        axis = self._axes[role]
        if axis is None:
            return None
        shape = [1] * rank
        shape[axis] = self._variables[role].shape[0]
        return tuple(shape)

    def kept_for(self, variable) -> np.ndarray:
        """The bool mask this constraint applies to `variable`, in its shape (all True where it has none)."""
        role, shape = self._role_for(variable), tuple(variable.shape)
        kept = self.kept(role)
        if kept is None:
            return np.ones(shape, dtype=bool)
        view = self._broadcastable(role, len(shape))
        return np.broadcast_to(kept if view is None else kept.reshape(view), shape)

    def __call__(self, w):
        role = self._role_for(w)
        if self.inner is not None:
            w = self.inner(w)
        mask = self._variables.get(role)
        if mask is None:
            return w
        view = self._broadcastable(role, len(w.shape))
        if view is not None:
            mask = ops.reshape(mask, view)
        return ops.multiply(w, ops.cast(mask, w.dtype))

    def get_config(self):
        masks = {
            role: {"axis": self._axes[role], "shape": list(self.kept(role).shape), "bits": _pack(self.kept(role))}
            for role in self._variables
        }
        inner = None if self.inner is None else keras.constraints.serialize(self.inner)
        return {"structure": self.structure, "masks": masks, "inner": inner}


def mask_chain(constraint) -> list[PruningMask]:
    """The `PruningMask`s a constraint is made of, outermost first (empty for any other constraint)."""
    chain = []
    while isinstance(constraint, PruningMask):
        chain.append(constraint)
        constraint = constraint.inner
    return chain


def find_mask(constraint, structure: str) -> PruningMask | None:
    """The `PruningMask` of `structure` in a chain of constraints, or None."""
    return next((mask for mask in mask_chain(constraint) if mask.structure == structure), None)
