"""nicbook.entropy.pmf: float PMFs to integer frequencies, and the tables the coders read."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nicbook.entropy import FrequencyTables, cross_entropy, entropy, quantize_pmf
from nicbook.entropy.pmf import check_message, check_table_indices

pmfs = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300).filter(lambda p: sum(p) > 0)


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


def two_tables() -> FrequencyTables:
    """Table 0 over -1..1 (frequencies 4, 8, 3 and ESCAPE 1), table 1 over 5..6 (7, 8 and ESCAPE 1)."""
    return FrequencyTables([4, 8, 3, 1, 7, 8, 1], [3, 2], [-1, 5], precision=4)


def test_tables_know_their_ranges_and_escapes():
    tables = two_tables()
    assert tables.num_tables == 2 and tables.sizes.tolist() == [3, 2] and tables.offsets.tolist() == [-1, 5]
    assert tables.table(1).tolist() == [7, 8, 1]
    values, table_of = [-1, 0, 1, 9, 6, 0], [0, 0, 0, 0, 1, 1]
    assert tables.symbols(values, table_of).tolist() == [0, 1, 2, 3, 1, 2]  # 3 and 2: ESCAPE
    expected = [4 - np.log2(f) for f in (4, 8, 3, 1, 8, 1)]
    np.testing.assert_allclose(tables.information_bits(values, table_of), expected)
    np.testing.assert_allclose(tables.cheapest_bits(), [1.0, 1.0])


def test_from_pmfs_quantizes_each_pmf_and_appends_an_escape():
    pmfs = [np.array([0.25, 0.5, 0.25]), np.array([1.0, 3.0])]
    tables = FrequencyTables.from_pmfs(pmfs, [-1, 5], precision=10, escape_probability=2.0**-10)
    for t, pmf in enumerate(pmfs):
        frequencies = tables.table(t)
        assert frequencies.sum() == 2**10 and frequencies[-1] == 1
        np.testing.assert_allclose(frequencies[:-1] / 2**10, pmf / pmf.sum(), atol=2e-3)


def test_tables_travel_as_plain_integer_arrays():
    tables = FrequencyTables.from_pmfs([np.exp(-np.abs(np.arange(-9, 10)) / s) for s in (0.5, 3.0)], [-9, -9], 14)
    arrays = tables.to_arrays()
    assert all(isinstance(a, np.ndarray) and a.dtype.kind in "iu" for a in arrays.values())
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    restored = FrequencyTables.from_arrays(dict(np.load(buffer, allow_pickle=False)))
    assert restored.precision == tables.precision
    for name in ("frequencies", "sizes", "offsets"):
        assert np.array_equal(getattr(restored, name), getattr(tables, name)), name


def test_invalid_tables_and_messages_are_refused():
    equal = FrequencyTables(np.tile(quantize_pmf([1, 2, 1], 8), (2, 1)), precision=8)
    assert equal.num_tables == 2 and equal.sizes.tolist() == [2, 2]
    with pytest.raises(ValueError):
        FrequencyTables([1, 2, 3], [2], [0], 8)  # does not sum to 2**8
    with pytest.raises(ValueError):
        FrequencyTables([0, 256], [1], [0], 8)  # zero frequency
    with pytest.raises(ValueError, match="table indices must be in"):
        check_table_indices([0, 5], 2, two_tables())
    with pytest.raises(ValueError, match="2 values but 3 table indices"):
        check_table_indices([0, 1, 1], 2, two_tables())
    with pytest.raises(ValueError, match="integers"):
        check_message([0.5, 1.0], 0, two_tables())
    values, table_of = check_message([3, 4], 1, two_tables())
    assert values.dtype == table_of.dtype == np.int64 and table_of.tolist() == [1, 1]


def reference_quantize(pmf, precision):
    """quantize_pmf's repair one count at a time, as first written: the tables of every file
    ever written depend on it, so the faster loop must give the same frequencies."""
    p = np.asarray(pmf, dtype=np.float64)
    p = p / math.fsum(p.tolist())
    total = 1 << precision
    freq = np.maximum(1, np.floor(p * total + 0.5)).astype(np.int64)
    excess = int(freq.sum()) - total
    while excess > 0:
        removable = np.flatnonzero(freq > 1)
        chosen = removable[np.argsort(p[removable] / (freq[removable] - 0.5), kind="stable")[:excess]]
        freq[chosen] -= 1
        excess -= chosen.size
    if excess < 0:
        freq[np.argsort(-(p / (freq + 0.5)), kind="stable")[:-excess]] += 1
    return freq


@pytest.mark.parametrize("seed", range(12))
def test_quantize_pmf_gives_the_frequencies_it_always_gave(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(2, 5000))
    pmf = rng.dirichlet(np.full(size, 10.0 ** rng.uniform(-3, 1)))
    if seed % 3 == 0:  # a few large counts and a long tail of tiny ones: many counts clamped to 1
        pmf = np.where(rng.random(size) < 0.01, 1.0, 1e-9)
    precision = int(rng.integers(max(12, int(np.ceil(np.log2(size)))), 17))
    assert np.array_equal(quantize_pmf(pmf, precision), reference_quantize(pmf, precision))
