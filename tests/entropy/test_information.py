"""nicbook.entropy.information: information content, entropy, cross-entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nicbook.entropy import cross_entropy, empirical_entropy, entropy, information_content


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
