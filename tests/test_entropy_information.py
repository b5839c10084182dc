"""Information measures and the float -> integer PMF quantizer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nicbook.entropy import cross_entropy, empirical_entropy, entropy, information_content, quantize_pmf

pmfs = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300).filter(lambda p: sum(p) > 0)


def test_information_content_values():
    assert information_content(0.5) == 1.0
    np.testing.assert_allclose(information_content([1.0, 0.25, 0.125]), [0.0, 2.0, 3.0])
    assert information_content(0.0) == math.inf
    with pytest.raises(ValueError):
        information_content(1.5)


def test_entropy_and_cross_entropy():
    assert entropy([0.5, 0.5]) == pytest.approx(1.0)
    assert entropy([1, 1, 1, 1]) == pytest.approx(2.0)  # counts are normalised
    assert entropy([1.0, 0.0]) == 0.0
    p, q = [0.5, 0.25, 0.25], [0.25, 0.25, 0.5]
    assert cross_entropy(p, p) == pytest.approx(entropy(p))
    assert cross_entropy(p, q) == pytest.approx(0.5 * 2 + 0.25 * 2 + 0.25 * 1)
    assert cross_entropy([0.5, 0.5], [1.0, 0.0]) == math.inf
    with pytest.raises(ValueError):
        entropy([-1.0, 2.0])


def test_empirical_entropy():
    assert empirical_entropy(np.array([3, 3, 3])) == 0.0
    assert empirical_entropy(np.array([0, 1, 2, 3] * 5)) == pytest.approx(2.0)
    assert empirical_entropy(np.array([], dtype=int)) == 0.0
    with pytest.raises(ValueError):
        empirical_entropy(np.array([0.5, 1.5]))


@settings(max_examples=150, deadline=None)
@given(pmf=pmfs, precision=st.integers(9, 20))
def test_quantize_pmf_sums_exactly_without_zeros(pmf, precision):
    freq = quantize_pmf(pmf, precision)
    assert freq.dtype == np.uint32
    assert int(freq.astype(np.int64).sum()) == 1 << precision
    assert freq.min() >= 1
    np.testing.assert_array_equal(freq, quantize_pmf(np.array(pmf), precision))  # deterministic


def test_quantize_pmf_is_close_and_permutation_equivariant():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.full(100, 0.3))
    freq = quantize_pmf(p, 16)
    q = freq / 2**16
    assert cross_entropy(p, q) - entropy(p) < 0.01
    order = rng.permutation(100)
    # Without ties, quantizing a permuted PMF permutes the frequencies.
    np.testing.assert_array_equal(quantize_pmf(p[order], 16), freq[order])


def test_quantize_pmf_extremes():
    assert quantize_pmf([1.0], 4).tolist() == [16]
    skewed = quantize_pmf([1.0] + [0.0] * 15, 4)
    assert skewed.tolist() == [1] * 16
    assert quantize_pmf([1 - 1e-12, 1e-12, 0.0], 16).tolist() == [65534, 1, 1]
    with pytest.raises(ValueError):
        quantize_pmf(np.ones(17), 4)
    with pytest.raises(ValueError):
        quantize_pmf([0.0, 0.0])
    with pytest.raises(ValueError):
        quantize_pmf([np.nan, 1.0])


def test_quantize_pmf_golden_values():
    # Fixed outputs: a change here changes every table, and so every stream written before.
    assert quantize_pmf([0.5, 0.3, 0.15, 0.05, 1e-6], 5).tolist() == [15, 9, 5, 2, 1]
    gaussian = np.exp(-0.5 * (np.arange(-20, 21) / 4.0) ** 2)
    assert quantize_pmf(gaussian, 12).tolist() == [
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        2,
        5,
        9,
        18,
        32,
        55,
        88,
        132,
        187,
        247,
        307,
        360,
        395,
        408,
        395,
        360,
        307,
        247,
        187,
        132,
        88,
        55,
        32,
        18,
        9,
        5,
        2,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
    ]
