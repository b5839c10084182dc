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

import weakref

import numpy as np
from numpy.typing import ArrayLike

from nicbook.entropy.bits import BitReader, decode_uvarint, encode_uvarint, pack_bits
from nicbook.entropy.pmf import MAX_TABLE_PRECISION, FrequencyTables, check_message, check_table_indices
from nicbook.errors import BitstreamError

MAX_PRECISION = MAX_TABLE_PRECISION
STATE_LOWER = 1 << 16  # states are kept in [STATE_LOWER, 2**32)
WORD_BITS = 16
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
#: Per tables object, the per-slot decoding arrays of the last stack of tables decoded with.
_SLOT_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lane_count(n_symbols: int, information_bits: float | None = None) -> int:
    """Lanes for a message: one per ``ROWS_PER_LANE`` symbols, at most ``MAX_LANES``, and, when the
    message's information content is known, at most one per ``BITS_PER_LANE`` bits of it, so that a
    long but nearly predictable message (a neural codec's latents at low rate) is not dominated by
    the lanes' final states."""
    lanes = n_symbols // ROWS_PER_LANE
    if information_bits is not None:
        lanes = min(lanes, int(information_bits // BITS_PER_LANE))
    return int(min(MAX_LANES, max(1, lanes)))


def _slot_tables(tables: FrequencyTables, used: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-slot decoding arrays for the tables ``used`` stacked, plus one padding block.

    For slot ``s`` of block ``b`` (``key = b * 2**precision + s``): the flat table entry
    that owns it, its frequency, and ``s - cumulative``, so that a decoding step is
    ``state = freq[key] * (state >> precision) + bias[key]``. The padding block decodes
    a certain symbol, which leaves the state unchanged. The last stack of each tables object is cached.
    """
    key = tuple(used.tolist())
    if _SLOT_CACHE.get(tables, (None,))[0] != key:
        slots = 1 << tables.precision
        entries = [
            np.repeat(np.arange(tables.starts[t], tables.starts[t] + tables.sizes[t] + 1), tables.table(t))
            for t in key
        ]
        entry = np.concatenate(entries + [np.full(slots, tables.frequencies.size)]).astype(np.int32)
        freq = np.append(tables.frequencies, slots).astype(np.uint32)
        start = np.append(tables.cumulative, 0).astype(np.uint32)
        slot = np.tile(np.arange(slots, dtype=np.uint32), len(key) + 1)
        _SLOT_CACHE[tables] = (key, entry, freq[entry], slot - start[entry])
    return _SLOT_CACHE[tables][1:]

def _search_tables(tables: FrequencyTables, used: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Binary-search decoding arrays for the tables ``used`` stacked, plus one padding block.

    Returns the sorted keys at which entries begin (``b * 2**precision + cumulative`` for
    block ``b``), the flat entry of each, and per flat entry (padding last) the key where it
    begins and its frequency: a slot's entry is the last one beginning at or below its key.
    """
    slots = 1 << tables.precision
    widths = tables.sizes[used] + 1
    entry = np.concatenate(
        [np.arange(tables.starts[t], tables.starts[t] + width) for t, width in zip(used, widths)]
        + [np.array([tables.frequencies.size])]
    )
    blocks = np.append(np.repeat(np.arange(used.size), widths), used.size)
    cumulative = np.append(tables.cumulative, 0).astype(np.int64)
    begins = blocks * slots + cumulative[entry]
    begin_of_entry = np.zeros(tables.frequencies.size + 1, dtype=np.int64)
    begin_of_entry[entry] = begins
    freq = np.append(tables.frequencies, slots).astype(np.uint32)
    return begins, entry.astype(np.int64), begin_of_entry, freq


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
    values, table_of = check_message(values, table_indices, tables)
    n = values.size
    if n == 0:
        return b""
    entry, escaped = tables.entries(values, table_of)
    if lanes is None:
        lanes = lane_count(n, float(tables.entry_bits(entry).sum()))
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
    table_of = check_table_indices(indices, n, tables)
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
        slot_entry, slot_freq, slot_bias = _slot_tables(tables, used)
        lookup = None
    else:
        lookup = _search_tables(tables, used)
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
