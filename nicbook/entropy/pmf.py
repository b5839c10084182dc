"""Turning a float probability model into the integer frequency table a coder needs.

Arithmetic coders and rANS work with integer frequencies that sum to a power of two. Encoder
and decoder must build bit-identical tables, so the conversion uses only operations whose
result IEEE 754 fixes exactly (products, quotients, an exactly rounded sum) and breaks ties by
symbol index; it never depends on summation order, libm or the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

MAX_PRECISION = 31


def quantize_pmf(pmf: ArrayLike, precision: int = 16) -> np.ndarray:
    """Integer frequencies, each >= 1, summing to exactly ``2**precision``.

    Starts from ``round(p * 2**precision)`` clamped to at least 1, then repairs the total by
    moving single counts where the cost in expected code length is smallest: a count is
    added where ``p / (f + 1/2)`` is largest and removed where ``p / (f - 1/2)`` is smallest
    (first-order estimates of the change in cross-entropy). ``pmf`` need not be normalised.

    Raises
    ------
    ValueError
        If ``pmf`` is empty, has negative or non-finite entries or zero mass, or has more
        than ``2**precision`` symbols (each needs a non-zero frequency).
    """
    if not 1 <= precision <= MAX_PRECISION:
        raise ValueError(f"precision must be in [1, {MAX_PRECISION}], got {precision}")
    p = np.asarray(pmf, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError("pmf must be a non-empty 1-D array")
    if p.size > 1 << precision:
        raise ValueError(f"{p.size} symbols do not fit in a table of precision {precision}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("pmf entries must be finite and non-negative")
    mass = math.fsum(p.tolist())
    if mass <= 0:
        raise ValueError("pmf must have positive total mass")
    p = p / mass
    total = 1 << precision
    freq = np.maximum(1, np.floor(p * total + 0.5)).astype(np.int64)
    excess = int(freq.sum()) - total
    while excess > 0:
        removable = np.flatnonzero(freq > 1)
        cost = p[removable] / (freq[removable] - 0.5)
        chosen = removable[np.argsort(cost, kind="stable")[:excess]]
        freq[chosen] -= 1
        excess -= chosen.size
    if excess < 0:
        gain = p / (freq + 0.5)
        freq[np.argsort(-gain, kind="stable")[:-excess]] += 1
    return freq.astype(np.uint32)
