"""Interleaved range asymmetric numeral systems (rANS), vectorised with numpy.

The coder keeps ``L`` 32-bit states side by side ("lanes"); symbol ``i`` is coded by lane
``i % L``, so each step of the Python loop codes a whole row of ``L`` symbols with a handful
of numpy operations. States live in ``[2**16, 2**32)`` and move 16-bit words in and out
(one at most per symbol, since the table precision is at most 16 bits).

Each table also has an ESCAPE symbol: a value outside the table's range is coded as ESCAPE
and its distance to the range is sent in a bypass section of the same stream with an
Elias-gamma code, so every int64 can be coded whatever the model.

Stream layout::

    uvarint lanes | uvarint bypass bytes | bypass bits | lanes x uint32 final states | uint16 words

(integers little-endian). The encoder starts every lane at ``2**16``; the decoder checks that
it ends there and that every word was used, which catches most corruption.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from nicbook.entropy.bits import BitReader, decode_uvarint, encode_uvarint, pack_bits
from nicbook.entropy.pmf import quantize_pmf
from nicbook.errors import BitstreamError

MAX_PRECISION = 16
STATE_LOWER = 1 << 16  # states are kept in [STATE_LOWER, 2**32)
WORD_BITS = 16
MAX_OFFSET = 1 << 62  # keeps offset + table size and escape distances inside (u)int64
#: Rows of symbols per lane the lane-count rule aims for: more rows cost speed, more lanes
#: cost 32 flushed bits each.
ROWS_PER_LANE = 2048
MAX_LANES = 4096
#: Information (bits) per lane at least: each lane's 32-bit final state then costs at most 0.5 %.
BITS_PER_LANE = 6400


#: Bits a stream may hold beyond its symbols' information: lane count, lengths, final states. A
#: payload shorter than its symbols' least possible information minus this is corrupt.
STREAM_SLACK_BITS = 256
#: Decoding looks symbols up in per-slot arrays (``2**precision`` entries per table: fast) for up to
#: this many tables in one message, and by binary search over the tables' cumulative frequencies
#: beyond it, where the per-slot arrays would take too much memory (an adaptive coder's table sets).
MAX_SLOT_TABLES = 256


def lane_count(n_symbols: int, information_bits: float | None = None) -> int:
    """Lanes for a message: one per ``ROWS_PER_LANE`` symbols, at most ``MAX_LANES``, and, when the
    message's information content is known, at most one per ``BITS_PER_LANE`` bits of it, so that a
    long but nearly predictable message (a neural codec's latents at low rate) is not dominated by
    the lanes' final states."""
    lanes = n_symbols // ROWS_PER_LANE
    if information_bits is not None:
        lanes = min(lanes, int(information_bits // BITS_PER_LANE))
    return int(min(MAX_LANES, max(1, lanes)))


class FrequencyTables:
    """``T`` integer frequency tables, each over its own value range plus an ESCAPE symbol.

    Table ``t`` covers values ``offsets[t] .. offsets[t] + sizes[t] - 1``; its frequencies
    are the ``sizes[t]`` regular symbols followed by ESCAPE, all >= 1, summing to
    ``2**precision``.

    Parameters
    ----------
    frequencies
        The tables concatenated into one 1-D integer array of length ``sum(sizes + 1)``, or a
        2-D array ``(T, K + 1)`` of equally sized tables (then ``sizes`` may be omitted).
    sizes, offsets
        ``(T,)`` integers; ``offsets`` defaults to zeros.
    precision
        Bits of the probability scale, 1 to 16.
    """

    def __init__(
        self,
        frequencies: ArrayLike,
        sizes: ArrayLike | None = None,
        offsets: ArrayLike | None = None,
        precision: int = 16,
    ) -> None:
        freq = np.asarray(frequencies)
        if freq.ndim == 2 and sizes is None:
            sizes = np.full(freq.shape[0], freq.shape[1] - 1)
        if sizes is None:
            raise ValueError("sizes is required for a flat frequency array")
        freq = freq.ravel()
        if freq.size and not np.issubdtype(freq.dtype, np.integer):
            raise ValueError(f"frequencies must be integers, got dtype {freq.dtype}")
        self.precision = int(precision)
        if not 1 <= self.precision <= MAX_PRECISION:
            raise ValueError(f"precision must be in [1, {MAX_PRECISION}], got {precision}")
        self.sizes = np.asarray(sizes, dtype=np.int64).ravel()
        self.offsets = (
            np.zeros_like(self.sizes) if offsets is None else np.asarray(offsets, dtype=np.int64).ravel()
        )
        if self.sizes.size == 0:
            raise ValueError("at least one table is needed")
        if self.offsets.shape != self.sizes.shape:
            raise ValueError(f"{self.sizes.size} sizes but {self.offsets.size} offsets")
        if self.sizes.min() < 1 or self.sizes.max() + 1 > 1 << self.precision:
            raise ValueError(
                f"table sizes must be in [1, 2**precision - 1] = [1, {(1 << self.precision) - 1}]"
            )
        if np.abs(self.offsets).max() > MAX_OFFSET:
            raise ValueError("offsets must be within +-2**62")
        widths = self.sizes + 1
        if freq.size != widths.sum():
            raise ValueError(f"expected {widths.sum()} frequencies (sizes + 1 per table), got {freq.size}")
        freq = freq.astype(np.int64)
        self.starts = np.cumsum(widths) - widths  # index of each table's first entry
        if freq.min() < 1 or np.any(np.add.reduceat(freq, self.starts) != 1 << self.precision):
            raise ValueError(f"every frequency must be >= 1 and every table must sum to 2**{self.precision}")
        self.frequencies = freq.astype(np.uint32)
        self.cumulative = (
            np.cumsum(freq) - freq - np.repeat(np.cumsum(freq)[self.starts] - freq[self.starts], widths)
        ).astype(np.uint32)
        for array in (self.frequencies, self.cumulative, self.sizes, self.offsets, self.starts):
            array.flags.writeable = False
        self._decoding_cache: tuple | None = None

    @classmethod
    def from_pmfs(
        cls,
        pmfs: ArrayLike | Sequence[ArrayLike],
        offsets: ArrayLike,
        precision: int = 16,
        escape_probability: float | None = None,
    ) -> FrequencyTables:
        """Quantize float PMFs (a ``(T, K)`` array or a list of 1-D arrays) into tables.

        ESCAPE gets ``escape_probability``; by default the mass a PMF leaves out of its range
        (``1 - sum(pmf)`` when that is positive), which is what a truncated model's tails hold.
        Either way it never gets less than the smallest frequency, ``2**-precision``.
        """
        pmfs = [np.asarray(p, dtype=np.float64).ravel() for p in pmfs]
        offsets = np.asarray(offsets, dtype=np.int64).ravel()
        if len(pmfs) != offsets.size:
            raise ValueError(f"{len(pmfs)} PMFs but {offsets.size} offsets")
        if not pmfs:
            raise ValueError("from_pmfs needs at least one PMF")
        tables = []
        for pmf in pmfs:
            if pmf.size == 0 or not np.all(np.isfinite(pmf)) or np.any(pmf < 0) or pmf.sum() <= 0:
                raise ValueError("each PMF must be non-empty, finite, non-negative, with positive mass")
            mass = math.fsum(pmf.tolist())  # exactly rounded: the same on every machine
            escape = max(0.0, 1.0 - mass) if escape_probability is None else float(escape_probability)
            if not 0 <= escape < 1:
                raise ValueError(f"escape_probability must be in [0, 1), got {escape}")
            normalised = pmf / mass * (1.0 - escape)
            tables.append(quantize_pmf(np.append(normalised, escape), precision))
        return cls(np.concatenate(tables), [p.size for p in pmfs], offsets, precision)

    @property
    def num_tables(self) -> int:
        return int(self.sizes.size)

    def __len__(self) -> int:
        return self.num_tables

    def __repr__(self) -> str:
        return f"FrequencyTables({self.num_tables} tables, sizes {self.sizes.min()}..{self.sizes.max()}, precision {self.precision})"

    def table(self, t: int) -> np.ndarray:
        """Frequencies of table ``t`` (regular symbols, then ESCAPE)."""
        return self.frequencies[self.starts[t] : self.starts[t] + self.sizes[t] + 1]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain integer arrays (for a checkpoint or ``np.savez``); see :meth:`from_arrays`."""
        return {
            "frequencies": self.frequencies.copy(),
            "sizes": self.sizes.copy(),
            "offsets": self.offsets.copy(),
            "precision": np.array(self.precision, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, ArrayLike]) -> FrequencyTables:
        return cls(
            arrays["frequencies"], arrays["sizes"], arrays["offsets"], int(np.asarray(arrays["precision"]))
        )

    def symbols(self, values: ArrayLike, table_indices: ArrayLike) -> np.ndarray:
        """Index of each value in its table (``values - offset``; ``sizes[t]`` = ESCAPE)."""
        values, tables = _message(values, table_indices, self)
        entry, _ = self._entries(values, tables)
        return entry - self.starts[tables]

    def cheapest_bits(self) -> np.ndarray:
        """Per table, the cost in bits of its most probable symbol: no value it codes costs less."""
        largest = np.maximum.reduceat(self.frequencies, self.starts)
        return self.precision - np.log2(largest.astype(np.float64))

    def information_bits(self, values: ArrayLike, table_indices: ArrayLike) -> np.ndarray:
        """Ideal cost ``-log2(freq / 2**precision)`` of each value under its integer table.

        An escaped value counts the ESCAPE symbol only, not its Elias-gamma payload.
        """
        values, tables = _message(values, table_indices, self)
        entry, _ = self._entries(values, tables)
        return self._entry_bits(entry)

    def _entry_bits(self, entry: np.ndarray) -> np.ndarray:
        """Ideal cost in bits of each entry (index into the concatenated tables)."""
        return self.precision - np.log2(self.frequencies[entry].astype(np.float64))

    def _entries(self, values: np.ndarray, tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat table entry of each value and the mask of escaped values."""
        offsets, sizes = self.offsets[tables], self.sizes[tables]
        escaped = (values < offsets) | (values >= offsets + sizes)
        local = np.where(escaped, sizes, values - offsets)
        return self.starts[tables] + local, escaped

    def _slot_tables(self, used: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-slot decoding arrays for the tables ``used`` stacked, plus one padding block.

        For slot ``s`` of block ``b`` (``key = b * 2**precision + s``): the flat table entry
        that owns it, its frequency, and ``s - cumulative``, so that a decoding step is
        ``state = freq[key] * (state >> precision) + bias[key]``. The padding block decodes
        a certain symbol, which leaves the state unchanged. The last stack is cached.
        """
        key = tuple(used.tolist())
        if self._decoding_cache is None or self._decoding_cache[0] != key:
            slots = 1 << self.precision
            entries = [
                np.repeat(np.arange(self.starts[t], self.starts[t] + self.sizes[t] + 1), self.table(t))
                for t in key
            ]
            entry = np.concatenate(entries + [np.full(slots, self.frequencies.size)]).astype(np.int32)
            freq = np.append(self.frequencies, slots).astype(np.uint32)
            start = np.append(self.cumulative, 0).astype(np.uint32)
            slot = np.tile(np.arange(slots, dtype=np.uint32), len(key) + 1)
            self._decoding_cache = (key, entry, freq[entry], slot - start[entry])
        return self._decoding_cache[1:]

    def _search_tables(self, used: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Binary-search decoding arrays for the tables ``used`` stacked, plus one padding block.

        Returns the sorted keys at which entries begin (``b * 2**precision + cumulative`` for
        block ``b``), the flat entry of each, and per flat entry (padding last) the key where it
        begins and its frequency: a slot's entry is the last one beginning at or below its key.
        """
        slots = 1 << self.precision
        widths = self.sizes[used] + 1
        entry = np.concatenate(
            [np.arange(self.starts[t], self.starts[t] + width) for t, width in zip(used, widths)]
            + [np.array([self.frequencies.size])]
        )
        blocks = np.append(np.repeat(np.arange(used.size), widths), used.size)
        cumulative = np.append(self.cumulative, 0).astype(np.int64)
        begins = blocks * slots + cumulative[entry]
        begin_of_entry = np.zeros(self.frequencies.size + 1, dtype=np.int64)
        begin_of_entry[entry] = begins
        freq = np.append(self.frequencies, slots).astype(np.uint32)
        return begins, entry.astype(np.int64), begin_of_entry, freq


def _message(
    values: ArrayLike, table_indices: ArrayLike, tables: FrequencyTables
) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(values, table indices)`` as int64 vectors of equal length."""
    values = np.asarray(values)
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"values must be integers, got dtype {values.dtype}")
    if values.dtype == np.uint64 and values.size and values.max() > np.iinfo(np.int64).max:
        raise ValueError("values must fit in int64")
    values = values.astype(np.int64).ravel()
    return values, _table_indices(table_indices, values.size, tables)


def _table_indices(table_indices: ArrayLike, n: int, tables: FrequencyTables) -> np.ndarray:
    indices = np.asarray(table_indices)
    if indices.size and not np.issubdtype(indices.dtype, np.integer):
        raise ValueError("table indices must be integers")
    indices = (
        np.broadcast_to(indices.astype(np.int64), (n,))
        if indices.ndim == 0
        else indices.astype(np.int64).ravel()
    )
    if indices.size != n:
        raise ValueError(f"{n} values but {indices.size} table indices")
    if n and (indices.min() < 0 or indices.max() >= tables.num_tables):
        raise ValueError(f"table indices must be in [0, {tables.num_tables})")
    return indices


def _bit_lengths(x: np.ndarray) -> np.ndarray:
    """Exact bit length of each uint64 (float log2 rounds near powers of two)."""
    lengths = np.zeros(x.shape, dtype=np.int64)
    x = x.copy()
    for step in (32, 16, 8, 4, 2, 1):
        big = x >= np.uint64(1) << np.uint64(step)
        lengths[big] += step
        x[big] >>= np.uint64(step)
    return lengths + (x > 0)


def _encode_escapes(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> bytes:
    """Side bit (1 = above the range) and Elias-gamma code of ``distance + 1`` per value."""
    above = values >= high
    distance = np.where(
        above,
        values.astype(np.uint64) - high.astype(np.uint64),
        (low - 1).astype(np.uint64) - values.astype(np.uint64),
    )
    gamma = distance + np.uint64(1)
    n_bits = _bit_lengths(gamma)
    codes = np.stack([above.astype(np.uint64), np.zeros_like(gamma), gamma], axis=1)
    lengths = np.stack([np.ones_like(n_bits), n_bits - 1, n_bits], axis=1)
    data, _ = pack_bits(codes, lengths)
    return data


def _decode_escapes(data: bytes, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    reader = BitReader(data)
    values = np.empty(low.size, dtype=np.int64)
    int64 = np.iinfo(np.int64)
    for i, (lo, hi) in enumerate(zip(low.tolist(), high.tolist())):
        above = reader.read(1)
        zeros = 0
        while reader.read(1) == 0:
            zeros += 1
            if zeros > 64:
                raise BitstreamError("corrupt escape code in rANS stream")
        distance = ((1 << zeros) | reader.read(zeros)) - 1
        value = hi + distance if above else lo - 1 - distance
        if not int64.min <= value <= int64.max:
            raise BitstreamError("escaped value outside int64 in rANS stream")
        values[i] = value
    if reader.bits_left >= 8:
        raise BitstreamError("unused bytes in the escape section of the rANS stream")
    return values


def rans_encode(
    values: ArrayLike, table_indices: ArrayLike, tables: FrequencyTables, lanes: int | None = None
) -> bytes:
    """Encode int values, value ``i`` with table ``table_indices[i]`` (or one table for all).

    ``lanes`` overrides :func:`lane_count` (the decoder reads it from the stream).
    """
    values, table_of = _message(values, table_indices, tables)
    n = values.size
    if n == 0:
        return b""
    entry, escaped = tables._entries(values, table_of)
    if lanes is None:
        lanes = lane_count(n, float(tables._entry_bits(entry).sum()))
    lanes = int(lanes)
    if not 1 <= lanes <= n:
        raise ValueError(f"lanes must be in [1, {n}], got {lanes}")
    offsets, sizes = tables.offsets[table_of[escaped]], tables.sizes[table_of[escaped]]
    bypass = _encode_escapes(values[escaped], offsets, offsets + sizes) if escaped.any() else b""

    precision = tables.precision
    rows = -(-n // lanes)
    # Padding positions code a certain symbol (frequency 2**precision): the identity map.
    freq = np.full(rows * lanes, 1 << precision, dtype=np.uint64)
    start = np.zeros(rows * lanes, dtype=np.uint32)
    freq[:n] = tables.frequencies[entry]
    start[:n] = tables.cumulative[entry]
    # A state above this bound would overflow 32 bits after coding the symbol: shed a word first.
    bound = ((freq << np.uint64(32 - precision)) - np.uint64(1)).astype(np.uint32).reshape(rows, lanes)
    freq, start = freq.astype(np.uint32).reshape(rows, lanes), start.reshape(rows, lanes)
    state = np.full(lanes, STATE_LOWER, dtype=np.uint32)
    word_mask, word_bits, shift = np.uint32(0xFFFF), np.uint32(WORD_BITS), np.uint32(precision)
    emitted = []
    for row in range(rows - 1, -1, -1):
        full = state > bound[row]
        emitted.append(state[full] & word_mask)
        state = np.where(full, state >> word_bits, state)
        quotient, remainder = np.divmod(state, freq[row])
        state = (quotient << shift) + remainder + start[row]
    words = np.concatenate(emitted[::-1]).astype("<u2")
    header = encode_uvarint(lanes) + encode_uvarint(len(bypass))
    return header + bypass + state.astype("<u4").tobytes() + words.tobytes()


def rans_decode(data: bytes, table_indices: ArrayLike, tables: FrequencyTables) -> np.ndarray:
    """Decode as many values as ``table_indices`` has entries (int64).

    Raises :class:`~nicbook.errors.BitstreamError` for a stream that is truncated, too long,
    or does not end in the encoder's initial states. All loops are bounded by the message
    length and every read is checked, so corrupt input can neither hang nor read out of bounds.
    """
    data = bytes(data)
    indices = np.asarray(table_indices)
    if indices.ndim == 0:
        raise ValueError("the decoder needs one table index per value (np.full(n, t) for a single table)")
    n = int(indices.size)
    table_of = _table_indices(indices, n, tables)
    if n == 0:
        if data:
            raise BitstreamError("rANS stream has data but no symbols were expected")
        return np.zeros(0, dtype=np.int64)
    lanes, position = decode_uvarint(data)
    bypass_bytes, position = decode_uvarint(data, position)
    if not 1 <= lanes <= n:
        raise BitstreamError(f"rANS stream declares {lanes} lanes for {n} symbols")
    if position + bypass_bytes + 4 * lanes > len(data) or (len(data) - position - bypass_bytes) % 2:
        raise BitstreamError("rANS stream truncated")
    bypass = data[position : position + bypass_bytes]
    position += bypass_bytes
    state = np.frombuffer(data, dtype="<u4", count=lanes, offset=position)
    words = np.frombuffer(data, dtype="<u2", offset=position + 4 * lanes)
    if state.min() < STATE_LOWER:
        raise BitstreamError("corrupt rANS stream: invalid final state")

    precision = tables.precision
    slots = 1 << precision
    used = np.flatnonzero(np.bincount(table_of, minlength=tables.num_tables))
    if used.size <= MAX_SLOT_TABLES:
        slot_entry, slot_freq, slot_bias = tables._slot_tables(used)
        lookup = None
    else:
        lookup = tables._search_tables(used)
    block_of_table = np.zeros(tables.num_tables, dtype=np.int64)
    block_of_table[used] = np.arange(used.size) * slots
    rows = -(-n // lanes)
    block = np.full(rows * lanes, used.size * slots, dtype=np.int64)
    block[:n] = block_of_table[table_of]
    block = block.reshape(rows, lanes)
    keys = np.empty((rows, lanes), dtype=np.int64)
    state = state.astype(np.uint32)
    words = words.astype(np.uint32)
    slot_mask, shift, word_bits = np.uint32(slots - 1), np.uint32(precision), np.uint32(WORD_BITS)
    read = 0
    for row in range(rows):
        key = block[row] + (state & slot_mask)
        if lookup is None:
            keys[row] = key
            state = slot_freq[key] * (state >> shift) + slot_bias[key]
        else:
            keys[row] = entry_row = lookup[1][np.searchsorted(lookup[0], key, side="right") - 1]
            bias = key - lookup[2][entry_row]
            state = lookup[3][entry_row] * (state >> shift) + bias.astype(np.uint32)
        low = state < STATE_LOWER
        k = int(np.count_nonzero(low))
        if k:
            if read + k > words.size:
                raise BitstreamError("rANS stream truncated")
            state[low] = (state[low] << word_bits) | words[read : read + k]
            read += k
    if read != words.size or np.any(state != STATE_LOWER):
        raise BitstreamError("corrupt rANS stream: it does not end in the initial state")

    keys = keys.ravel()[:n]
    entry = keys if lookup is not None else slot_entry[keys].astype(np.int64)
    local = entry - tables.starts[table_of]
    values = tables.offsets[table_of] + local
    escaped = local == tables.sizes[table_of]
    if escaped.any():
        offsets, sizes = tables.offsets[table_of[escaped]], tables.sizes[table_of[escaped]]
        values[escaped] = _decode_escapes(bypass, offsets, offsets + sizes)
    elif bypass:
        raise BitstreamError("rANS stream has an escape section but no escapes")
    return values
