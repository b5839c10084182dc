"""Distortion and rate: MSE, PSNR, bits per pixel, and Bjøntegaard deltas between RD curves.

PSNR follows the convention of the learned-compression literature: the MSE is taken over all three
RGB channels of 8-bit images together, and the peak is 255.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayLike = np.ndarray | Sequence[float]


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("cannot measure distortion of empty arrays")
    return a.astype(np.float64), b.astype(np.float64)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every sample (all pixels and channels)."""
    a, b = _pair(a, b)
    return float(np.mean((a - b) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(peak² / MSE)``; ``inf`` for identical images."""
    error = mse(a, b)
    if error == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak**2 / error))


def bpp(data_or_bits: bytes | bytearray | int, shape: Sequence[int]) -> float:
    """Bits per pixel of a compressed image: a byte string counts 8 bits per byte, an int is bits.

    ``shape`` is the image's ``(H, W)`` or ``(H, W, C)``; channels do not change the pixel count.
    """
    if isinstance(data_or_bits, (bytes, bytearray, memoryview)):
        bits = 8 * len(data_or_bits)
    elif isinstance(data_or_bits, (int, np.integer)):
        bits = int(data_or_bits)
        if bits < 0:
            raise ValueError("a bit count cannot be negative")
    else:
        raise TypeError("bpp expects a bytes object or an integer number of bits")
    if len(shape) < 2 or shape[0] <= 0 or shape[1] <= 0:
        raise ValueError(f"shape must start with positive (H, W), got {tuple(shape)}")
    return bits / (int(shape[0]) * int(shape[1]))


def _curve(curve: tuple[ArrayLike, ArrayLike], name: str) -> tuple[np.ndarray, np.ndarray]:
    rate, quality = (np.asarray(values, dtype=np.float64) for values in curve)
    if rate.shape != quality.shape or rate.ndim != 1:
        raise ValueError(f"{name}: rates and PSNRs must be 1-D arrays of equal length")
    if len(rate) < 4:
        raise ValueError(f"{name}: the Bjøntegaard metric needs at least 4 RD points, got {len(rate)}")
    if np.any(rate <= 0) or not np.all(np.isfinite(quality)):
        raise ValueError(f"{name}: rates must be positive and PSNRs finite")
    order = np.argsort(quality)
    return rate[order], quality[order]


def _integral_of_fit(x: np.ndarray, y: np.ndarray, low: float, high: float) -> float:
    """Integral over [low, high] of the cubic polynomial fitted to ``y(x)`` (least squares)."""
    antiderivative = np.polyint(np.polyfit(x, y, 3))
    return float(np.polyval(antiderivative, high) - np.polyval(antiderivative, low))


def bd_rate(reference: tuple[ArrayLike, ArrayLike], test: tuple[ArrayLike, ArrayLike]) -> float:
    """Bjøntegaard delta rate in percent: the average rate change of ``test`` against ``reference``
    at equal PSNR (negative means ``test`` needs fewer bits).

    Each curve is ``(bpps, psnrs)`` with at least four points. Following VCEG-M33, log-rate is fitted
    as a cubic in PSNR and integrated over the PSNR range both curves cover.
    """
    rate_ref, psnr_ref = _curve(reference, "reference")
    rate_test, psnr_test = _curve(test, "test")
    low, high = max(psnr_ref.min(), psnr_test.min()), min(psnr_ref.max(), psnr_test.max())
    if high <= low:
        raise ValueError("the two RD curves do not overlap in PSNR")
    area_ref = _integral_of_fit(psnr_ref, np.log(rate_ref), low, high)
    area_test = _integral_of_fit(psnr_test, np.log(rate_test), low, high)
    return float((np.exp((area_test - area_ref) / (high - low)) - 1.0) * 100.0)


def bd_psnr(reference: tuple[ArrayLike, ArrayLike], test: tuple[ArrayLike, ArrayLike]) -> float:
    """Bjøntegaard delta PSNR in dB: the average PSNR gain of ``test`` over ``reference`` at equal
    rate (PSNR fitted as a cubic in log-rate over the common rate range)."""
    rate_ref, psnr_ref = _curve(reference, "reference")
    rate_test, psnr_test = _curve(test, "test")
    log_ref, log_test = np.log(rate_ref), np.log(rate_test)
    low, high = max(log_ref.min(), log_test.min()), min(log_ref.max(), log_test.max())
    if high <= low:
        raise ValueError("the two RD curves do not overlap in rate")
    area_ref = _integral_of_fit(log_ref, psnr_ref, low, high)
    area_test = _integral_of_fit(log_test, psnr_test, low, high)
    return float((area_test - area_ref) / (high - low))
