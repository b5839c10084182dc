"""Scalar quantization: the uniform quantizer with a dead zone and a reconstruction offset.

A uniform scalar quantizer with step ``Δ`` maps ``x`` to the integer index
``q = sign(x) · floor(|x| / Δ + rounding)`` and reconstructs ``x̂ = sign(q) · (|q| - offset) · Δ``.

- ``rounding = 1/2`` is plain rounding (the mid-tread quantizer): every cell is ``Δ`` wide and,
  at high rate, the error is uniform on ``[-Δ/2, Δ/2]`` with mean squared value ``Δ²/12``
  (:func:`uniform_mse`).
- ``rounding < 1/2`` widens the cell of zero to ``2 (1 - rounding) Δ``: the *dead zone*.
  Transform coefficients are peaked at zero (Laplacian-like), so sending more of them as zero
  saves many bits for little extra distortion; H.264 uses ``rounding = 1/3`` for intra blocks.
- ``offset > 0`` moves every non-zero reconstruction towards zero. Within a cell a peaked
  density has more mass near its inner edge, so the conditional mean (the MSE-optimal
  reconstruction) lies below the cell's midpoint.

The index depends only on the encoder's ``rounding``; the decoder needs ``Δ`` and ``offset``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dead_zone_width", "dequantize", "quantize", "uniform_mse"]


def _check_step(step: float | np.ndarray) -> np.ndarray:
    step = np.asarray(step, dtype=np.float64)
    if not np.all(np.isfinite(step)) or np.any(step <= 0):
        raise ValueError("quantization steps must be finite and positive")
    return step


def quantize(x: np.ndarray, step: float | np.ndarray, rounding: float = 0.5) -> np.ndarray:
    """Indices ``sign(x) · floor(|x| / step + rounding)`` as int64; ``step`` broadcasts against ``x``.

    ``rounding`` in ``[0, 1/2]``: ``1/2`` rounds to the nearest multiple of ``step``, smaller
    values widen the dead zone around zero (see :func:`dead_zone_width`).
    """
    if not 0.0 <= rounding <= 0.5:
        raise ValueError(f"rounding must lie in [0, 0.5], got {rounding}")
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot quantize NaN or infinite values")
    magnitude = np.floor(np.abs(x) / _check_step(step) + rounding)
    return (np.sign(x) * magnitude).astype(np.int64)


def dequantize(indices: np.ndarray, step: float | np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Reconstructions ``sign(q) · (|q| - offset) · step`` in float64 (zero stays zero).

    ``offset`` in ``[0, 1/2)`` pulls non-zero reconstructions towards zero by that fraction of a step.
    """
    if not 0.0 <= offset < 0.5:
        raise ValueError(f"offset must lie in [0, 0.5), got {offset}")
    indices = np.asarray(indices)
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"quantization indices must be integers, got dtype {indices.dtype}")
    magnitude = np.abs(indices).astype(np.float64)
    return np.sign(indices) * np.maximum(magnitude - offset, 0.0) * _check_step(step)


def dead_zone_width(step: float, rounding: float = 0.5) -> float:
    """Width of the interval that :func:`quantize` maps to zero: ``2 (1 - rounding) · step``."""
    return float(2.0 * (1.0 - rounding) * _check_step(step))


def uniform_mse(step: float | np.ndarray) -> np.ndarray | float:
    """High-rate mean squared error ``Δ² / 12`` of rounding to a grid of step ``Δ``."""
    step = _check_step(step)
    mse = step**2 / 12.0
    return float(mse) if mse.ndim == 0 else mse
