"""Canonical, length-limited Huffman codes (the variant JPEG uses).

Code lengths come from Huffman's algorithm; when the longest code exceeds the limit, the
length histogram is repaired with the procedure of JPEG Annex K.3 and the lengths are dealt
out again, shortest to the most frequent symbols. Codes are then assigned canonically
(Annex C): by length, then by symbol, so a decoder only needs the lengths.
"""

from __future__ import annotations

import heapq

import numpy as np
from numpy.typing import ArrayLike

from nicbook.entropy.bits import pack_bits
from nicbook.errors import BitstreamError

#: Longest code a :class:`HuffmanCode` accepts (its decoding table has ``2**MAX_LENGTH`` rows).
MAX_LENGTH = 20


def _huffman_depths(weights: list[float]) -> list[int]:
    """Leaf depths of a Huffman tree over ``weights`` (at least two), ties broken by node id."""
    heap = [(w, i) for i, w in enumerate(weights)]
    heapq.heapify(heap)
    parent = [0] * (2 * len(weights) - 1)
    node = len(weights)
    while len(heap) > 1:
        w1, a = heapq.heappop(heap)
        w2, b = heapq.heappop(heap)
        parent[a] = parent[b] = node
        heapq.heappush(heap, (w1 + w2, node))
        node += 1
    depth = [0] * len(parent)
    for i in range(len(parent) - 2, -1, -1):  # parents have larger ids than their children
        depth[i] = depth[parent[i]] + 1
    return depth[: len(weights)]


def _limit_length_counts(counts: list[int], max_length: int) -> list[int]:
    """JPEG Annex K.3: move leaves up until no code is longer than ``max_length``.

    ``counts[l]`` is the number of codes of length ``l`` of a complete prefix code; each step
    takes two leaves at the deepest level, hangs one under the shallowest leaf above and
    promotes the other into their parent's place, keeping the code complete.
    """
    counts = list(counts)
    for i in range(len(counts) - 1, max_length, -1):
        while counts[i] > 0:
            j = i - 2
            while counts[j] == 0:
                j -= 1
            counts[i] -= 2
            counts[i - 1] += 1
            counts[j + 1] += 2
            counts[j] -= 1
    return counts[: max_length + 1]


def huffman_code_lengths(frequencies: ArrayLike, max_length: int = 16) -> np.ndarray:
    """Code length of every symbol; 0 for symbols of frequency 0, 1 for a lone used symbol.

    Optimal (Huffman) when no code exceeds ``max_length``, otherwise near-optimal (JPEG
    Annex K.3). Note that a JPEG table must also avoid the all-ones code: Annex K.2 does
    that by adding a dummy symbol of frequency 1 before calling this.
    """
    freq = np.asarray(frequencies)
    if freq.ndim != 1:
        raise ValueError("frequencies must be a 1-D array")
    if freq.size and (not np.all(np.isfinite(freq)) or freq.min() < 0):
        raise ValueError("frequencies must be finite and non-negative")
    if not 1 <= max_length <= MAX_LENGTH:
        raise ValueError(f"max_length must be in [1, {MAX_LENGTH}], got {max_length}")
    lengths = np.zeros(freq.size, dtype=np.int64)
    used = np.flatnonzero(freq > 0)
    if used.size > 1 << max_length:
        raise ValueError(f"{used.size} symbols cannot all get codes of at most {max_length} bits")
    if used.size == 1:
        lengths[used] = 1
    if used.size <= 1:
        return lengths
    depths = np.array(_huffman_depths(freq[used].tolist()), dtype=np.int64)
    if depths.max() > max_length:
        counts = _limit_length_counts(np.bincount(depths).tolist(), max_length)
        by_frequency = np.lexsort((used, -freq[used]))  # most frequent first, then by symbol
        depths[by_frequency] = np.repeat(np.arange(len(counts)), counts)
    lengths[used] = depths
    return lengths


def _validated_lengths(lengths: ArrayLike) -> np.ndarray:
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or (lengths.size and not np.issubdtype(lengths.dtype, np.integer)):
        raise ValueError("code lengths must be a 1-D integer array")
    lengths = lengths.astype(np.int64)
    if lengths.size and (lengths.min() < 0 or lengths.max() > 32):
        raise ValueError("code lengths must be in [0, 32]")
    longest = int(lengths.max(initial=0))
    used = lengths[lengths > 0]
    if int((np.int64(1) << (longest - used)).sum()) > 1 << longest:
        raise ValueError("code lengths violate the Kraft inequality: no prefix code has them")
    return lengths


def canonical_codes(lengths: ArrayLike) -> np.ndarray:
    """Canonical code values for ``lengths`` (JPEG Annex C: by length, then by symbol).

    The first code of each length is the last code of the previous length plus one, shifted
    left by the difference in length. Symbols of length 0 get code 0 (and are not coded).
    """
    lengths = _validated_lengths(lengths)
    codes = np.zeros(lengths.size, dtype=np.uint32)
    code = 0
    for length in range(1, int(lengths.max(initial=0)) + 1):
        symbols = np.flatnonzero(lengths == length)  # ascending symbol order
        codes[symbols] = code + np.arange(symbols.size, dtype=np.uint32)
        code = (code + symbols.size) << 1
    return codes


class HuffmanCode:
    """A canonical prefix code over symbols ``0 .. len(lengths) - 1``.

    Build it with :meth:`from_frequencies` (encoder side) or :meth:`from_lengths` (a decoder
    reading lengths from a header); both sides then hold identical codes.
    """

    def __init__(self, lengths: ArrayLike) -> None:
        lengths = _validated_lengths(lengths)
        if lengths.max(initial=0) > MAX_LENGTH:
            raise ValueError(f"codes longer than {MAX_LENGTH} bits are not supported")
        self.lengths = lengths
        self.codes = canonical_codes(lengths)
        self.lengths.flags.writeable = False
        self.codes.flags.writeable = False
        self._table: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_frequencies(cls, frequencies: ArrayLike, max_length: int = 16) -> HuffmanCode:
        return cls(huffman_code_lengths(frequencies, max_length))

    @classmethod
    def from_lengths(cls, lengths: ArrayLike) -> HuffmanCode:
        return cls(lengths)

    @property
    def max_length(self) -> int:
        return int(self.lengths.max(initial=0))

    def __repr__(self) -> str:
        used = int((self.lengths > 0).sum())
        return f"HuffmanCode({self.lengths.size} symbols, {used} used, max length {self.max_length})"

    def average_length(self, frequencies: ArrayLike) -> float:
        """Expected code length in bits/symbol under the (unnormalised) ``frequencies``."""
        freq = np.asarray(frequencies, dtype=np.float64)
        if freq.shape != self.lengths.shape:
            raise ValueError(f"expected {self.lengths.size} frequencies, got {freq.size}")
        if np.any((freq > 0) & (self.lengths == 0)):
            raise ValueError("a symbol with non-zero frequency has no code")
        return float((freq * self.lengths).sum() / freq.sum())

    def encode(self, symbols: ArrayLike) -> bytes:
        """Concatenated codes of ``symbols``, the last byte padded with zero bits."""
        symbols = np.asarray(symbols).ravel()
        if symbols.size == 0:
            return b""
        if not np.issubdtype(symbols.dtype, np.integer):
            raise ValueError("symbols must be integers")
        if symbols.min() < 0 or symbols.max() >= self.lengths.size or np.any(self.lengths[symbols] == 0):
            raise ValueError("a symbol is outside the code's alphabet or has no code")
        data, _ = pack_bits(self.codes[symbols], self.lengths[symbols])
        return data

    def _decoding_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(symbol, length)`` for every ``max_length``-bit window; length 0 marks invalid codes."""
        if self._table is None:
            width = self.max_length
            symbols = np.zeros(1 << width, dtype=np.int64)
            lengths = np.zeros(1 << width, dtype=np.int64)
            for symbol in np.flatnonzero(self.lengths):
                length = int(self.lengths[symbol])
                first = int(self.codes[symbol]) << (width - length)
                symbols[first : first + (1 << (width - length))] = symbol
                lengths[first : first + (1 << (width - length))] = length
            self._table = (symbols, lengths)
        return self._table

    def decode(self, data: bytes, n_symbols: int) -> np.ndarray:
        """Decode ``n_symbols`` symbols from ``data``.

        Every bit position's ``max_length``-bit window is looked up at once with numpy; the
        Python loop then only hops from one code to the next. Raises
        :class:`~nicbook.errors.BitstreamError` on an invalid code or a truncated stream.
        """
        if n_symbols < 0:
            raise ValueError("n_symbols must be non-negative")
        if n_symbols == 0:
            return np.zeros(0, dtype=np.int64)
        if self.max_length == 0:
            raise ValueError("the code has no symbols")
        out: list[int] = []
        table_symbols, table_lengths = self._decoding_table()
        width = self.max_length
        raw = np.frombuffer(bytes(data), dtype=np.uint8).astype(np.uint32)
        total_bits = 8 * raw.size
        padded = np.concatenate([raw, np.zeros(4, dtype=np.uint32)])
        words = (padded[:-3] << 24) | (padded[1:-2] << 16) | (padded[2:-1] << 8) | padded[3:]
        chunk_bits = 1 << 16
        position = 0
        while len(out) < n_symbols:
            if position >= total_bits:
                raise BitstreamError(f"Huffman stream truncated after {len(out)} of {n_symbols} symbols")
            start, stop = position, min(position + chunk_bits, total_bits)
            at = np.arange(start, stop)
            windows = (words[at >> 3] >> (32 - width - (at & 7)).astype(np.uint32)) & ((1 << width) - 1)
            hop = table_lengths[windows].tolist()
            symbol_at = table_symbols[windows].tolist()
            while len(out) < n_symbols and position < stop:
                length = hop[position - start]
                if length == 0:
                    raise BitstreamError(f"invalid Huffman code at bit {position}")
                out.append(symbol_at[position - start])
                position += length
        if position > total_bits:
            raise BitstreamError("Huffman stream truncated inside the last code")
        return np.array(out, dtype=np.int64)
