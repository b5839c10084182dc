"""nicbook.metrics: MSE, PSNR, bpp and the Bjøntegaard deltas on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nicbook import metrics


def test_psnr_of_known_arrays():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 10, np.uint8)
    assert metrics.mse(a, b) == 100.0
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))


def test_mse_does_not_wrap_around_uint8():
    a = np.array([[0]], np.uint8)
    b = np.array([[255]], np.uint8)
    assert metrics.mse(a, b) == 255.0**2
    assert metrics.psnr(a, b) == pytest.approx(0.0)


def test_psnr_identical_is_infinite_and_shape_mismatch_raises():
    a = np.ones((3, 3, 3), np.uint8)
    assert metrics.psnr(a, a) == math.inf
    with pytest.raises(ValueError, match="shape"):
        metrics.mse(a, a[:2])


def test_bpp_from_bytes_and_bits():
    assert metrics.bpp(b"\x00" * 16, (8, 16, 3)) == 1.0
    assert metrics.bpp(256, (8, 16)) == 2.0
    with pytest.raises(ValueError):
        metrics.bpp(-1, (8, 8))
    with pytest.raises(TypeError):
        metrics.bpp("abc", (8, 8))  # type: ignore[arg-type]


def _curve():
    rates = np.array([0.25, 0.5, 1.0, 2.0])
    return rates, 28.0 + 4.0 * np.log2(rates / 0.25)


def test_bd_rate_of_a_curve_against_itself_is_zero():
    assert metrics.bd_rate(_curve(), _curve()) == pytest.approx(0.0, abs=1e-9)
    assert metrics.bd_psnr(_curve(), _curve()) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_bd_rate_of_a_rate_shifted_curve(factor):
    rates, psnrs = _curve()
    assert metrics.bd_rate(_curve(), (rates * factor, psnrs)) == pytest.approx((factor - 1) * 100, abs=1e-6)


def test_bd_psnr_of_a_psnr_shifted_curve():
    rates, psnrs = _curve()
    assert metrics.bd_psnr(_curve(), (rates, psnrs + 0.5)) == pytest.approx(0.5, abs=1e-9)


def test_bd_rate_needs_four_overlapping_points():
    rates, psnrs = _curve()
    with pytest.raises(ValueError, match="4 RD points"):
        metrics.bd_rate((rates[:3], psnrs[:3]), (rates[:3], psnrs[:3]))
    with pytest.raises(ValueError, match="overlap"):
        metrics.bd_rate(_curve(), (rates, psnrs + 100))
