"""nicbook.deadzone: the dead-zone uniform scalar quantizer."""

from __future__ import annotations

import numpy as np
import pytest

from nicbook.deadzone import dead_zone_width, dequantize, quantize, uniform_mse


def test_quantize_rounds_and_dead_zone_widens_zero_cell():
    x = np.array([-1.6, -0.6, -0.4, 0.0, 0.4, 0.6, 1.4, 1.6])
    assert quantize(x, 1.0).tolist() == [-2, -1, 0, 0, 0, 1, 1, 2]
    assert quantize(x, 1.0, rounding=0.25).tolist() == [-1, 0, 0, 0, 0, 0, 1, 1]
    assert dead_zone_width(1.0, 0.25) == pytest.approx(1.5)
    assert dead_zone_width(2.0) == pytest.approx(2.0)


def test_dequantize_offset_pulls_towards_zero():
    q = np.array([-2, 0, 1, 3])
    assert dequantize(q, 2.0).tolist() == [-4.0, 0.0, 2.0, 6.0]
    assert dequantize(q, 2.0, offset=0.25).tolist() == [-3.5, 0.0, 1.5, 5.5]


def test_uniform_quantization_mse_matches_step_squared_over_twelve():
    x = np.random.default_rng(0).normal(0, 10, 200_000)
    step = 2.0
    measured = np.mean((dequantize(quantize(x, step), step) - x) ** 2)
    assert measured == pytest.approx(uniform_mse(step), rel=0.03)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, np.nan])
def test_quantizer_rejects_bad_steps(bad):
    with pytest.raises(ValueError):
        quantize(np.ones(3), bad)
    with pytest.raises(ValueError):
        dequantize(np.ones(3, dtype=int), bad)
