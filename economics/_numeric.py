"""Small numeric helpers shared by the core, tuned for `[workloads x short window]` arrays."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray: TypeAlias = NDArray[np.float64]
"""float64 values: money, counts, ratios."""
BoolArray: TypeAlias = NDArray[np.bool_]
"""Masks."""
IndexArray: TypeAlias = NDArray[np.intp]
"""Row or column indices (what `np.flatnonzero` and `np.arange` give)."""
TimeArray: TypeAlias = NDArray[np.datetime64]
"""A time axis: datetime64[D] days or datetime64[h] hours."""
Threshold: TypeAlias = float | FloatArray
"""A scalar or a `(W,)` per-workload threshold."""

# Skinny matrix products run in row blocks small enough for OpenBLAS to stay single-threaded
# (it splits a product over threads once rows x inner x columns passes ~2 x 281,250). Waking
# its threads costs more than the arithmetic: a (10,000 x 8) @ (8 x 90) product measured
# 70 ms in one call versus about 1 ms in blocks, on a 2-core machine.
_BLOCK_ELEMENTS = 400_000


def ratio(numerator: ArrayLike, denominator: ArrayLike) -> FloatArray:
    """numerator / denominator elementwise, 0 where the denominator is not positive."""
    top, bottom = np.broadcast_arrays(
        np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    )
    out: FloatArray = np.divide(top, bottom, out=np.zeros(top.shape), where=bottom > 0)
    return out


def median(values: NDArray[Any], axis: int = -1) -> FloatArray:
    """The median along `axis`, by sorting: several times faster than `np.median`'s
    partition on short rows (7-56 values), which is all the core asks of it."""
    ordered = np.sort(values, axis=axis)
    length = ordered.shape[axis]
    if length == 0:
        return np.zeros(np.delete(ordered.shape, axis % ordered.ndim))
    middle = np.take(ordered, [(length - 1) // 2, length // 2], axis=axis)
    out: FloatArray = middle.mean(axis=axis)
    return out


def matmul(left: FloatArray, right: FloatArray) -> FloatArray:
    """`left @ right` for a tall `left` `(n, k)` and a small `right` `(k, m)`, in row blocks."""
    block = max(_BLOCK_ELEMENTS // max(left.shape[1] * right.shape[1], 1), 1)
    if left.shape[0] <= block:
        return left @ right
    out: FloatArray = np.empty((left.shape[0], right.shape[1]), dtype=np.result_type(left, right))
    for start in range(0, left.shape[0], block):
        np.matmul(left[start : start + block], right, out=out[start : start + block])
    return out
