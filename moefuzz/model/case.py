"""A case: one concrete input of a target, as plain numpy arrays and scalar parameters.

Cases are what the strategies generate, what the shrinker transforms, what travels to a worker
and what the corpus stores. They are data only: integer, float and bool numpy arrays plus a flat
dict of JSON scalars. Nothing in a case is code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from moefuzz.errors import CaseError

Scalar = int | float | bool | str

#: dtypes a case array may have; anything else (object arrays above all) is refused.
ALLOWED_DTYPES = frozenset(
    np.dtype(d).str for d in ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64")
)


@dataclass(frozen=True)
class Case:
    """One input of a target.

    Attributes:
        arrays: named numpy arrays, for example ``token_selected_experts`` [T, K] int32.
        params: named scalars (int, float, bool or str), for example ``num_experts``.
    """

    arrays: Mapping[str, np.ndarray]
    params: Mapping[str, Scalar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.arrays.items():
            if not isinstance(value, np.ndarray):
                raise CaseError(f"case array {name}={type(value).__name__!r} is not a numpy array")
            if value.dtype.str not in ALLOWED_DTYPES:
                raise CaseError(f"case array {name} has dtype={value.dtype.str!r}, not a plain number type")
        for name, scalar in self.params.items():
            if not isinstance(scalar, (int, float, bool, str)):
                raise CaseError(f"case param {name}={scalar!r} is not a JSON scalar")

    def replace(self, arrays: Mapping[str, np.ndarray] | None = None, **params: Scalar) -> Case:
        """Return a copy with some arrays and/or params replaced."""
        new_arrays = dict(self.arrays)
        if arrays:
            new_arrays.update(arrays)
        new_params = dict(self.params)
        new_params.update(params)
        return Case(new_arrays, new_params)

    def digest(self) -> str:
        """A hex sha256 of the case's content (arrays' dtypes, shapes and bytes, and params)."""
        h = hashlib.sha256()
        h.update(json.dumps(dict(self.params), sort_keys=True).encode())
        for name in sorted(self.arrays):
            arr = np.ascontiguousarray(self.arrays[name])
            h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    def describe(self) -> str:
        """One line: each array's name, shape and dtype, then the params."""
        parts = [f"{n}{list(a.shape)} {a.dtype}" for n, a in self.arrays.items()]
        parts += [f"{k}={v!r}" for k, v in self.params.items()]
        return ", ".join(parts)

    def nbytes(self) -> int:
        """Total bytes of the case's arrays."""
        return int(sum(a.nbytes for a in self.arrays.values()))
