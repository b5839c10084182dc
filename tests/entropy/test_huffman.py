"""nicbook.entropy.huffman: canonical, length-limited Huffman codes."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nicbook.entropy import HuffmanCode, canonical_codes, entropy, huffman_code_lengths
from nicbook.errors import BitstreamError

histograms = st.lists(st.integers(0, 10_000), min_size=1, max_size=300).filter(lambda f: any(f))


def assert_prefix_free(code: HuffmanCode) -> None:
    words = sorted(format(int(c), f"0{int(n)}b") for c, n in zip(code.codes, code.lengths) if n > 0)
    for shorter, longer in pairwise(words):  # in sorted order a prefix precedes its extensions
        assert not longer.startswith(shorter), (shorter, longer)


def fibonacci(n: int) -> list[int]:
    values = [1, 1]
    while len(values) < n:
        values.append(values[-1] + values[-2])
    return values


@settings(max_examples=100, deadline=None)
@given(frequencies=histograms, max_length=st.integers(9, 16))
def test_codes_are_prefix_free_limited_and_near_entropy(frequencies, max_length):
    code = HuffmanCode.from_frequencies(frequencies, max_length)
    freq = np.array(frequencies)
    assert np.array_equal(code.lengths > 0, freq > 0)
    assert code.max_length <= max_length
    assert_prefix_free(code)
    used = int((freq > 0).sum())
    kraft = sum(2.0 ** -int(n) for n in code.lengths if n)
    assert kraft == 1.0 or used == 1  # complete code
    h = entropy(freq)
    assert h - 1e-9 <= code.average_length(freq) <= h + 1


def test_fibonacci_frequencies_force_the_limit():
    freq = fibonacci(30)  # unlimited Huffman gives a 29-bit code
    unlimited = huffman_code_lengths(freq, max_length=20)
    assert unlimited.max() == 20
    code = HuffmanCode.from_frequencies(freq, max_length=16)
    assert code.max_length == 16
    assert_prefix_free(code)
    assert code.average_length(freq) < entropy(freq) + 1
    symbols = np.repeat(np.arange(30), 3)
    np.testing.assert_array_equal(code.decode(code.encode(symbols), symbols.size), symbols)


@settings(max_examples=60, deadline=None)
@given(frequencies=histograms, seed=st.integers(0, 2**32 - 1), n=st.integers(0, 2000))
def test_round_trip(frequencies, seed, n):
    code = HuffmanCode.from_frequencies(frequencies)
    used = np.flatnonzero(frequencies)
    symbols = np.random.default_rng(seed).choice(used, n)
    data = code.encode(symbols)
    assert len(data) == -(-int(code.lengths[symbols].sum()) // 8)
    np.testing.assert_array_equal(code.decode(data, n), symbols)
    assert np.array_equal(HuffmanCode.from_lengths(code.lengths).codes, code.codes)


def test_jpeg_annex_k_luminance_dc_table():
    # Table K.3: categories 0..11 have these code lengths and codes.
    lengths = [2, 3, 3, 3, 3, 3, 4, 5, 6, 7, 8, 9]
    expected = [
        "00",
        "010",
        "011",
        "100",
        "101",
        "110",
        "1110",
        "11110",
        "111110",
        "1111110",
        "11111110",
        "111111110",
    ]
    codes = canonical_codes(lengths)
    assert [format(int(c), f"0{n}b") for c, n in zip(codes, lengths)] == expected


def test_single_symbol_and_invalid_inputs():
    assert huffman_code_lengths([0, 7, 0]).tolist() == [0, 1, 0]
    assert huffman_code_lengths([0, 0]).tolist() == [0, 0]
    code = HuffmanCode.from_frequencies([0, 7, 0])
    np.testing.assert_array_equal(code.decode(code.encode([1, 1, 1]), 3), [1, 1, 1])
    with pytest.raises(ValueError):
        code.encode([0])
    with pytest.raises(ValueError):
        canonical_codes([1, 1, 1])  # violates Kraft
    with pytest.raises(ValueError):
        huffman_code_lengths(np.ones(5), max_length=2)


def test_decoding_errors():
    code = HuffmanCode.from_lengths([1, 2])  # codes 0, 10; "11" is not a code
    with pytest.raises(BitstreamError):
        code.decode(bytes([0b11000000]), 1)
    data = code.encode([1, 1, 1, 1])  # exactly one byte
    with pytest.raises(BitstreamError):
        code.decode(data, 5)
    with pytest.raises(BitstreamError):
        code.decode(b"", 1)
