"""Information content, entropy and cross-entropy, in bits.

These are the yardsticks of every coder in the book: a coder is good when the bits it writes
come close to the information content of the message under the model it was given.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def information_content(p: ArrayLike) -> np.ndarray | float:
    """Bits needed to describe an outcome of probability ``p``: ``-log2(p)`` (``inf`` for 0)."""
    p = np.asarray(p, dtype=np.float64)
    if np.any(p < 0) or np.any(p > 1) or np.any(np.isnan(p)):
        raise ValueError("probabilities must lie in [0, 1]")
    with np.errstate(divide="ignore"):
        bits = -np.log2(p)
    return float(bits) if bits.ndim == 0 else bits


def _normalized(pmf: ArrayLike, name: str) -> np.ndarray:
    """``pmf`` as a float64 vector scaled to sum to one (so histograms of counts work too)."""
    p = np.asarray(pmf, dtype=np.float64).ravel()
    if p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be a non-empty array of finite, non-negative numbers")
    total = p.sum()
    if total <= 0:
        raise ValueError(f"{name} must have positive total mass")
    return p / total


def entropy(pmf: ArrayLike) -> float:
    """Shannon entropy ``H(p) = sum p log2(1/p)`` in bits; ``pmf`` is normalised first."""
    p = _normalized(pmf, "pmf")
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def cross_entropy(p: ArrayLike, q: ArrayLike) -> float:
    """Average bits per symbol when data distributed as ``p`` is coded with a code built for ``q``.

    Equals ``H(p) + KL(p || q)``; infinite when ``q`` gives zero probability to a symbol ``p``
    can produce. Both arguments are normalised first.
    """
    p = _normalized(p, "p")
    q = _normalized(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same length, got {p.size} and {q.size}")
    used = p > 0
    if np.any(q[used] == 0):
        return float("inf")
    return float(-(p[used] * np.log2(q[used])).sum())


def empirical_entropy(values: ArrayLike) -> float:
    """Order-0 entropy in bits/symbol of the histogram of an integer array (0 for empty input)."""
    values = np.asarray(values)
    if values.size == 0:
        return 0.0
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"values must be integers, got dtype {values.dtype}")
    _, counts = np.unique(values, return_counts=True)
    return entropy(counts)
