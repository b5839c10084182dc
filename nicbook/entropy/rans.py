"""Interleaved range asymmetric numeral systems (rANS), vectorised with numpy.

The coder keeps ``L`` states side by side ("lanes"); symbol ``i`` is coded by lane ``i % L``, so
each step of the Python loop codes a whole row of ``L`` symbols with a handful of numpy
operations. A stream of few lanes (at most :data:`SERIAL_LANES`: a small file, where the lanes'
cost would weigh) is coded one symbol at a time in plain Python integers instead, which is then the
faster loop; both write the same stream.

**Format 2** (written). States are 64-bit and move 32-bit words in and out, staying in
``[2**32, 2**64)``: at least ``2**16`` times any frequency of a table (precision at most 16
bits), so each symbol costs ``-log2(f / 2**precision)`` bits to within about ``2**-16`` bit,
whatever the source. A state that started at its lower bound would waste 32 bits per lane, and
one that started empty codes its first symbols well above their information (a small rANS state
is a poor coder). So one serial lane, the *starter*, codes every ``stride``-th symbol of the
message (:func:`starter_mask`) from a small state, the vectorised lanes the others, and
each lane takes its initial state out of the starter, as 32 bits
of its information ("bits back"): the decoder puts them back when the lanes are done, then
decodes the starter's symbols. A lane then costs only its final state's rounding, about five
bits, and a message about 60 bits in all; :func:`lane_count` gives a message as many lanes as
keep that within :data:`OVERHEAD_TARGET` of its information. A short message is coded by the
starter alone.

Each table also has an ESCAPE symbol: a value outside the table's range is coded as ESCAPE and
its distance to the range is sent in the side section with an Elias-gamma code (at most
:data:`MAX_ESCAPE_DISTANCE`).

Stream layout (format 2)::

    uvarint lanes | uvarint starter stride (if lanes > 0) | uvarint side bytes | side bits
    | lanes' words | starter's words        (words: uint32, little-endian)

    side bits, MSB first: the starter's final state (7 bits of length, then the bits below its
    leading one) | each lane's final state (5 bits of length - 33, then those bits)
    | per escaped value: 1 bit (1 = above the range), gamma(distance + 1)

**Format 1** (read only: ``.nic`` versions 1 to 4, block-coder version 1) kept 32-bit states in
``[2**16, 2**32)`` starting at ``2**16`` and moved 16-bit words: a state could fall to near a
symbol's frequency, where rANS codes noticeably above or below the information (2 % on a badly
mismatched table), and each lane's start and 32-bit final state cost about 24 bits.

The decoder checks that every lane ends where the encoder started, that every word and side bit
was used, and that the lane and symbol counts are ones the format allows for the message and
the stream's length: corrupt input can neither hang nor read out of bounds.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from nicbook.entropy.bits import BitReader, decode_uvarint, encode_uvarint, pack_bits
from nicbook.entropy.pmf import MAX_TABLE_PRECISION, FrequencyTables, check_message, check_table_indices
from nicbook.errors import BitstreamError

#: The stream format :func:`rans_encode` writes; :func:`rans_decode` also reads format 1.
STREAM_FORMAT = 2
STREAM_FORMATS = (1, 2)
MAX_PRECISION = MAX_TABLE_PRECISION
STATE_LOWER = 1 << 32  # a lane that has reached this stays in [STATE_LOWER, 2**64)
WORD_BITS = 32
WORD_MASK = (1 << WORD_BITS) - 1
#: The starter's initial state: large enough (2**precision at most) that every symbol it codes
#: costs about its information. From a tiny state, a symbol whose cumulative frequency is 0 would
#: cost nothing, and a long run of them would make a stream shorter than its information.
STARTER_INITIAL = 1 << 16
#: What a lane costs beyond its information, in bits, on average (its final state's rounding),
#: and what a message costs (lengths, the starter's start and final state, byte padding).
LANE_BITS = 5.5
HEADER_BITS = 64
OVERHEAD_TARGET = 0.0009
MAX_LANES = 4096
#: Symbols the serial starter codes at most (a plain Python loop: about 0.1 s for the most).
MAX_STARTER = 1 << 17
#: Rows at most: a message too long for the starter alone gets at least ``n / MAX_ROWS`` lanes,
#: which bounds the Python loop (and a decoder fed a forged lane count) for any message.
MAX_ROWS = 1 << 17
#: Largest distance of an escaped value to its table's range.
MAX_ESCAPE_DISTANCE = (1 << 32) - 1

#: Bits a stream may hold beyond its symbols' information: lane count, lengths, final states. A
#: payload shorter than its symbols' least possible information minus this is corrupt.
STREAM_SLACK_BITS = 256
#: Streams of at most this many lanes are coded one symbol at a time in plain Python integers
#: (about half a microsecond a symbol) rather than a row at a time in numpy (several microseconds
#: a row, whatever its length): a small file's few lanes would make numpy's loop the slower one.
SERIAL_LANES = 24
_U64 = np.uint64


def lane_count(n_symbols: int, information_bits: float, overhead: float = OVERHEAD_TARGET) -> int:
    """Lanes for a message of ``n_symbols`` carrying ``information_bits`` (0: the starter alone).

    As many as keep the lanes' and the header's cost within ``overhead`` (a fraction) of the
    information, at most :data:`MAX_LANES`, and at least :func:`fewest_lanes`. More lanes code faster.
    """
    affordable = int((overhead * information_bits - HEADER_BITS) // LANE_BITS)
    return int(min(most_lanes(n_symbols), max(0, min(affordable, MAX_LANES), fewest_lanes(n_symbols))))


def fewest_lanes(n_symbols: int) -> int:
    """The fewest lanes a format-2 stream of ``n_symbols`` may have: none if the starter can code
    them all, else enough for at most :data:`MAX_ROWS` rows."""
    return 0 if n_symbols <= MAX_STARTER else -(-int(n_symbols) // MAX_ROWS)


def most_lanes(n_symbols: int) -> int:
    """The most lanes a format-2 stream of ``n_symbols`` may have."""
    return min(int(n_symbols), max(MAX_LANES, fewest_lanes(n_symbols)))


def _search_tables(tables: FrequencyTables, used: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Binary-search decoding arrays for the tables ``used`` stacked, plus one padding block.

    Returns the sorted keys at which entries begin (``b * 2**precision + cumulative`` for
    block ``b``) and, at ``i + 1`` for the ``i``-th of them, the flat entry that begins there, its
    frequency and that key: a slot's entry is the last one beginning at or below its key, so
    ``np.searchsorted(begins, key, side="right")`` indexes the other three directly.
    """
    slots = 1 << tables.precision
    widths = tables.sizes[used] + 1
    entry = np.concatenate(
        [np.arange(tables.starts[t], tables.starts[t] + width) for t, width in zip(used, widths)]
        + [np.array([tables.frequencies.size])]
    )
    blocks = np.append(np.repeat(np.arange(used.size), widths), used.size)
    cumulative = np.append(tables.cumulative, 0).astype(np.uint64)
    begins = blocks.astype(np.uint64) * _U64(slots) + cumulative[entry]
    freq = np.append(tables.frequencies, slots).astype(np.uint32)
    return begins, np.append(0, entry), np.append(0, freq[entry]).astype(np.uint32), np.append(_U64(0), begins)


def _bit_lengths(x: np.ndarray) -> np.ndarray:
    """Exact bit length of each uint64 (float log2 rounds near powers of two)."""
    lengths = np.zeros(x.shape, dtype=np.int64)
    x = x.astype(np.uint64)
    for step in (32, 16, 8, 4, 2, 1):
        big = x >= _U64(1) << _U64(step)
        lengths[big] += step
        x[big] >>= _U64(step)
    return lengths + (x > 0)


def _gamma(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elias-gamma codes of positive integers, as (codes, lengths) pairs for :func:`pack_bits`."""
    values = values.astype(np.uint64)
    n_bits = _bit_lengths(values)
    return np.stack([np.zeros_like(values), values], 1), np.stack([n_bits - 1, n_bits], 1)


def _read_gamma(reader: BitReader, max_bits: int, what: str) -> int:
    zeros = 0
    while reader.read(1) == 0:
        zeros += 1
        if zeros >= max_bits:
            raise BitstreamError(f"corrupt rANS stream: {what}")
    return (1 << zeros) | reader.read(zeros)


def _state_codes(states: np.ndarray, length_bits: int, shortest: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes of final states: the bit length minus ``shortest`` in ``length_bits`` bits, then
    the bits below the leading one."""
    n_bits = _bit_lengths(states)
    below = states - np.where(n_bits > 0, _U64(1) << np.maximum(n_bits - 1, 0).astype(np.uint64), _U64(0))
    lengths = np.stack([np.full(states.size, length_bits), np.maximum(n_bits - 1, 0)], 1)
    return np.stack([(n_bits - shortest).astype(np.uint64), below], 1), lengths


def _read_state(reader: BitReader, length_bits: int, shortest: int) -> int:
    n_bits = shortest + reader.read(length_bits)
    if n_bits > 64:
        raise BitstreamError("corrupt rANS stream: invalid final state")
    return (1 << n_bits - 1 | reader.read(n_bits - 1)) if n_bits else 0


def _escape_codes(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Side bit (1 = above the range) and Elias-gamma code of ``distance + 1`` per value."""
    above = values >= high
    distance = np.where(above, values - high, low - 1 - values)
    if distance.size and distance.max() > MAX_ESCAPE_DISTANCE:
        raise ValueError(
            f"a value lies {int(distance.max())} beyond its table's range; rANS escapes reach "
            f"at most {MAX_ESCAPE_DISTANCE}"
        )
    codes, lengths = _gamma(distance + 1)
    return np.hstack([above.astype(np.uint64)[:, None], codes]), np.hstack([np.ones((above.size, 1), np.int64), lengths])


def _read_escapes(reader: BitReader, low: np.ndarray, high: np.ndarray, max_distance: int) -> np.ndarray:
    values = np.empty(low.size, dtype=np.int64)
    int64 = np.iinfo(np.int64)
    too_far = "an escaped value lies farther from its table's range than the format allows"
    for i, (lo, hi) in enumerate(zip(low.tolist(), high.tolist())):
        above = reader.read(1)
        distance = _read_gamma(reader, max_distance.bit_length() + 1, too_far) - 1
        if distance > max_distance:
            raise BitstreamError(f"corrupt rANS stream: {too_far}")
        value = hi + distance if above else lo - 1 - distance
        if not int64.min <= value <= int64.max:
            raise BitstreamError("escaped value outside int64 in rANS stream")
        values[i] = value
    return values


def rans_encode(values: ArrayLike, table_indices: ArrayLike, tables: FrequencyTables, lanes: int | None = None) -> bytes:
    """Encode int values, value ``i`` with table ``table_indices[i]`` (or one table for all).

    ``lanes`` overrides :func:`lane_count` (the decoder reads it from the stream) within
    :func:`fewest_lanes` and :func:`most_lanes`. Raises ``ValueError`` for a value more than
    :data:`MAX_ESCAPE_DISTANCE` outside its table's range.
    """
    values, table_of = check_message(values, table_indices, tables)
    n = values.size
    if n == 0:
        return b""
    entry, escaped = tables.entries(values, table_of)
    offsets, sizes = tables.offsets[table_of[escaped]], tables.sizes[table_of[escaped]]
    escape_codes = _escape_codes(values[escaped], offsets, offsets + sizes)
    bits = tables.entry_bits(entry)
    if lanes is None:
        lanes = lane_count(n, float(bits.sum()) + float(escape_codes[1].sum()))
    lanes = int(lanes)
    if not fewest_lanes(n) <= lanes <= most_lanes(n):
        raise ValueError(f"lanes must be in [{fewest_lanes(n)}, {most_lanes(n)}] for {n} symbols, got {lanes}")
    freq = tables.frequencies[entry].astype(np.uint64)
    start = tables.cumulative[entry].astype(np.uint64)
    stride = _starter_stride(bits, lanes)
    starter_positions = starter_mask(n, stride)
    starter, stack = _encode_serially(freq[starter_positions], start[starter_positions], tables.precision)
    starter, initial = _take_initial_states(starter, stack, lanes)
    lane_positions = ~starter_positions
    final, words = _encode_lanes(freq[lane_positions], start[lane_positions], tables.precision, initial)
    parts = [_state_codes(np.array([starter], dtype=np.uint64), 7, 0), _state_codes(final, 5, 33), escape_codes]
    side, _ = pack_bits(
        np.concatenate([codes.astype(np.uint64).ravel() for codes, _ in parts]),
        np.concatenate([lengths.ravel() for _, lengths in parts]),
    )
    header = encode_uvarint(lanes) + (encode_uvarint(stride) if lanes else b"")
    return header + encode_uvarint(len(side)) + side + words.astype("<u4").tobytes() + np.array(stack, "<u4").tobytes()


def starter_mask(n: int, stride: int) -> np.ndarray:
    """Which of ``n`` symbols the starter codes: every ``stride``-th (the last of each group of
    ``stride``), all of them for a stride of 1."""
    mask = np.zeros(n, dtype=bool)
    mask[stride - 1 :: stride] = True
    return mask


def _starter_stride(bits: np.ndarray, lanes: int) -> int:
    """The starter's stride: 1 (all symbols) without lanes; else the largest whose symbols hold
    the lanes' initial states (32 bits each, and a margin), sampled across the whole message so
    that a stretch of nearly certain symbols cannot starve it, with at most :data:`MAX_STARTER`
    symbols."""
    if lanes == 0:
        return 1
    n = bits.size
    needed = WORD_BITS * lanes + 64
    shortest = max(2, -(-n // MAX_STARTER))
    longest = max(shortest, n // lanes)
    stride = int(np.clip(float(bits.sum()) / (2 * needed), shortest, longest))
    while stride > shortest and bits[stride - 1 :: stride].sum() < needed:
        stride = max(shortest, stride // 2)
    return stride


def _take_initial_states(starter: int, stack: list[int], lanes: int) -> tuple[int, np.ndarray]:
    """Bits back: each lane's initial state is ``2**32`` plus 32 bits decoded out of the starter
    (a uniform 32-bit symbol, refilling from its word stack). Returns the starter's state after."""
    initial = np.empty(lanes, dtype=np.uint64)
    for lane in range(lanes):
        initial[lane] = STATE_LOWER | starter & WORD_MASK
        starter >>= WORD_BITS
        if starter < STATE_LOWER and stack:
            starter = starter << WORD_BITS | stack.pop()
    return starter, initial


def _give_back_initial_states(starter: int, stack: list[int], initial: np.ndarray) -> int:
    """The inverse of :func:`_take_initial_states`: codes the lanes' initial states back into
    the starter, last lane first, shedding words onto ``stack``. Returns the starter's state."""
    for bits in (initial & _U64(WORD_MASK)).tolist()[::-1]:
        if starter >> WORD_BITS:
            stack.append(starter & WORD_MASK)
            starter >>= WORD_BITS
        starter = starter << WORD_BITS | bits
    return starter


def _encode_serially(freq: np.ndarray, start: np.ndarray, precision: int) -> tuple[int, list[int]]:
    """One lane from :data:`STARTER_INITIAL`, symbols last to first: its final state and its
    words (a stack). A valid state is never 0, so a damaged stream cannot decode into 0 and stay
    there unnoticed."""
    state, stack = STARTER_INITIAL, []
    shift = 64 - precision
    for f, c in zip(freq[::-1].tolist(), start[::-1].tolist()):
        if state >> shift >= f:  # coding would pass 2**64: shed a word first
            stack.append(state & WORD_MASK)
            state >>= WORD_BITS
        quotient, remainder = divmod(state, f)
        state = (quotient << precision) + remainder + c
    return state, stack


def _encode_lanes(freq: np.ndarray, start: np.ndarray, precision: int, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code ``freq.size`` symbols in ``state.size`` lanes from the given initial states: the
    final states and the words, in the order the decoder reads them."""
    lanes = state.size
    if lanes == 0:
        return state, np.zeros(0, dtype=np.uint64)
    if lanes <= SERIAL_LANES:
        return _encode_lanes_serially(freq, start, precision, state)
    rows = -(-freq.size // lanes)
    # Padding positions code a certain symbol (frequency 2**precision): the identity map.
    padded_freq = np.full(rows * lanes, 1 << precision, dtype=np.uint64)
    padded_start = np.zeros(rows * lanes, dtype=np.uint64)
    padded_freq[: freq.size], padded_start[: freq.size] = freq, start
    # A state above this bound would pass 2**64 after coding the symbol: shed a word first (a
    # certain symbol's bound wraps to 2**64 - 1: it never sheds).
    bound = ((padded_freq << _U64(64 - precision)) - _U64(1)).reshape(rows, lanes)
    # Coding is state -> (state // f) * 2**precision + state % f + start = state + (state // f) * growth + start.
    growth = (_U64(1 << precision) - padded_freq).reshape(rows, lanes)
    freq, start = padded_freq.reshape(rows, lanes), padded_start.reshape(rows, lanes)
    state = state.copy()
    word_bits = _U64(WORD_BITS)
    emitted = []
    for row in range(rows - 1, -1, -1):
        full = state > bound[row]
        emitted.append(state[full])  # the low word is kept when the words are written
        np.right_shift(state, word_bits, out=state, where=full)
        quotient = state // freq[row]
        state += quotient * growth[row]
        state += start[row]
    return state, np.concatenate(emitted[::-1]) & _U64(WORD_MASK)


def _encode_lanes_serially(freq: np.ndarray, start: np.ndarray, precision: int, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_encode_lanes` one symbol at a time, a lane after another: the same states, and the
    same words in the same order (the decoder reads them row by row: in the order of the symbols
    that shed them)."""
    lanes, n = state.size, freq.size
    shift, growth = 64 - precision, (1 << precision) - freq
    final, shed = [], []  # shed: (symbol, word)
    for lane in range(lanes):
        value = int(state[lane])
        last = lane + (n - 1 - lane) // lanes * lanes  # this lane's last symbol: coded first
        backwards = slice(last, None if lane == 0 else lane - 1, -lanes)
        for i, f, g, c in zip(range(last, -1, -lanes), *(a[backwards].tolist() for a in (freq, growth, start))):
            if value >> shift >= f:  # coding would pass 2**64: shed a word first
                shed.append((i, value & WORD_MASK))
                value >>= WORD_BITS
            value += value // f * g + c  # (value // f) * 2**precision + value % f + c
        final.append(value)
    shed.sort()
    return np.array(final, dtype=np.uint64), np.array([word for _, word in shed], dtype=np.uint64)


class _Lookup:
    """Decoding arrays for the tables a message uses: a symbol's entry, frequency and bias from
    its table's key block and the low ``precision`` bits of the state (its slot), by binary search
    over where the entries begin (:func:`_search_tables`: memory in proportion to the tables'
    entries, not to ``2**precision`` per table; per-slot arrays were no faster)."""

    def __init__(self, tables: FrequencyTables, table_of: np.ndarray) -> None:
        slots = 1 << tables.precision
        used = np.flatnonzero(np.bincount(table_of, minlength=tables.num_tables))
        self.arrays = _search_tables(tables, used)
        block_of_table = np.zeros(tables.num_tables, dtype=np.uint64)
        block_of_table[used] = np.arange(used.size, dtype=np.uint64) * _U64(slots)
        self.block = block_of_table[table_of]
        self.padding_block = used.size * slots
        self.several_blocks = used.size > 1
        self._lists: tuple[list[int], ...] | None = None

    def step(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Entry, frequency and bias (``slot - cumulative``) of each key (block + slot)."""
        begins, entry, freq, begin = self.arrays
        at = begins.searchsorted(key, side="right")
        return entry[at], freq[at], key - begin[at]

    def search_lists(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """The search arrays as Python lists, for the loops over one symbol at a time."""
        if self._lists is None:
            self._lists = tuple(array.tolist() for array in self.arrays)
        return self._lists


@dataclass
class _Lanes:
    """What a stream's header says about its lanes, in the integer width of its format."""

    state: np.ndarray  # each lane's final state, where decoding starts
    words: np.ndarray
    lower: int
    word_bits: int
    side: BitReader  # positioned at the escapes
    stride: int = 1
    starter: int = 0


def _parse_format_1(data: bytes, n: int) -> _Lanes:
    lanes, position = decode_uvarint(data)
    bypass_bytes, position = decode_uvarint(data, position)
    if not 1 <= lanes <= n:
        raise BitstreamError(f"rANS stream declares {lanes} lanes for {n} symbols")
    if position + bypass_bytes + 4 * lanes > len(data) or (len(data) - position - bypass_bytes) % 2:
        raise BitstreamError("rANS stream truncated")
    side = BitReader(data[position : position + bypass_bytes])
    position += bypass_bytes
    state = np.frombuffer(data, dtype="<u4", count=lanes, offset=position).astype(np.uint32)
    if state.min() < 1 << 16:
        raise BitstreamError("corrupt rANS stream: invalid final state")
    words = np.frombuffer(data, dtype="<u2", offset=position + 4 * lanes).astype(np.uint32)
    return _Lanes(state, words, 1 << 16, 16, side)


def _parse_format_2(data: bytes, n: int) -> _Lanes:
    lanes, position = decode_uvarint(data)
    stride = 1
    if lanes:
        stride, position = decode_uvarint(data, position)
    side_bytes, position = decode_uvarint(data, position)
    # A lane's final state takes at least 37 side bits.
    most = min(most_lanes(n), (8 * side_bytes) // 37)
    if not fewest_lanes(n) <= lanes <= most:
        raise BitstreamError(f"rANS stream declares {lanes} lanes for {n} symbols in {len(data)} bytes")
    if stride < 1 + bool(lanes) or n // stride > MAX_STARTER:
        raise BitstreamError(f"rANS stream declares a starter stride of {stride} for {n} symbols and {lanes} lanes")
    if position + side_bytes > len(data) or (len(data) - position - side_bytes) % 4:
        raise BitstreamError("rANS stream truncated")
    side = BitReader(data[position : position + side_bytes])
    words = np.frombuffer(data, dtype="<u4", offset=position + side_bytes).astype(np.uint64)
    starter = _read_state(side, 7, 0)
    state = np.array([_read_state(side, 5, 33) for _ in range(lanes)], dtype=np.uint64)
    return _Lanes(state, words, STATE_LOWER, WORD_BITS, side, stride, starter)


def check_capacity(payload_bytes: int, symbol_counts: np.ndarray, tables: FrequencyTables, what: str) -> None:
    """Refuse a payload too short for the symbols it claims, before anything is decoded or allocated.

    ``symbol_counts[t]`` symbols are coded with table ``t``; every symbol costs at least its table's
    cheapest symbol (:meth:`~nicbook.entropy.FrequencyTables.cheapest_bits`), so a small payload
    cannot stand for a huge message (a forged header).
    """
    needed = float((tables.cheapest_bits() * symbol_counts).sum())
    if needed > 8 * payload_bytes + STREAM_SLACK_BITS:
        raise BitstreamError(
            f"the payload of {payload_bytes} bytes is too short for {what}, which need at least "
            f"{needed:.0f} bits: corrupt or forged file"
        )


def rans_decode(
    data: bytes, table_indices: ArrayLike, tables: FrequencyTables, stream_format: int = STREAM_FORMAT
) -> np.ndarray:
    """Decode as many values as ``table_indices`` has entries (int64).

    ``stream_format`` 1 reads the streams of earlier releases. Raises
    :class:`~nicbook.errors.BitstreamError` for a stream that is truncated, too long, declares
    counts its message or length does not allow, or does not end where the encoder started.
    All loops are bounded by the message length and every read is checked.
    """
    data = bytes(data)
    indices = np.asarray(table_indices)
    if indices.ndim == 0:
        raise ValueError("the decoder needs one table index per value (np.full(n, t) for a single table)")
    if stream_format not in STREAM_FORMATS:
        raise ValueError(f"rANS stream format must be one of {STREAM_FORMATS}, got {stream_format}")
    n = int(indices.size)
    table_of = check_table_indices(indices, n, tables)
    if n == 0:
        if data:
            raise BitstreamError("rANS stream has data but no symbols were expected")
        return np.zeros(0, dtype=np.int64)
    if stream_format == 2:  # it costs at least its information, less a few bits
        check_capacity(len(data), np.bincount(table_of, minlength=tables.num_tables), tables, f"its {n} symbols")
    lanes = (_parse_format_1 if stream_format == 1 else _parse_format_2)(data, n)
    lookup = _Lookup(tables, table_of)
    if stream_format == 1:
        entry, state, read = _decode_lanes(lanes, lookup, lookup.block, tables.precision)
        if read != lanes.words.size or np.any(state != 1 << 16):
            raise BitstreamError("corrupt rANS stream: it does not end in the initial state")
    else:
        starter_positions = starter_mask(n, lanes.stride)
        entry = np.empty(n, dtype=np.int64)
        entry[~starter_positions], state, read = _decode_lanes(lanes, lookup, lookup.block[~starter_positions], tables.precision)
        if np.any(state >> _U64(WORD_BITS) != 1):
            raise BitstreamError("corrupt rANS stream: a lane does not end in an initial state")
        stack = lanes.words[read:].tolist()
        starter = _give_back_initial_states(lanes.starter, stack, state)
        entry[starter_positions] = _decode_serially(starter, stack, lookup, lookup.block[starter_positions], tables.precision)
    local = entry - tables.starts[table_of]
    values = tables.offsets[table_of] + local
    escaped = local == tables.sizes[table_of]
    offsets, sizes = tables.offsets[table_of[escaped]], tables.sizes[table_of[escaped]]
    max_distance = (1 << 64) - 1 if stream_format == 1 else MAX_ESCAPE_DISTANCE
    values[escaped] = _read_escapes(lanes.side, offsets, offsets + sizes, max_distance)
    if lanes.side.bits_left >= 8 or lanes.side.read(lanes.side.bits_left):
        raise BitstreamError("unused side bits at the end of the rANS stream")
    return values


def _decode_lanes(lanes: _Lanes, lookup: _Lookup, blocks: np.ndarray, precision: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Run the lanes' states back over their symbols, whose tables start at ``blocks`` in the
    lookup: their flat table entries, the states the lanes end in, and the number of words read."""
    state, count, n = lanes.state, lanes.state.size, blocks.size
    if count == 0:
        return np.zeros(0, dtype=np.int64), state, 0
    if count <= SERIAL_LANES:
        return _decode_lanes_serially(lanes, lookup, blocks, precision)
    rows = -(-n // count)
    block = np.full(rows * count, lookup.padding_block, dtype=np.uint64)
    block[:n] = blocks
    block = block.reshape(rows, count)
    several_blocks = lookup.several_blocks or rows * count > n
    entries = np.empty((rows, count), dtype=np.int64)
    words = lanes.words.astype(state.dtype)
    dtype = state.dtype.type
    slot_mask, shift, word_bits, lower = dtype((1 << precision) - 1), dtype(precision), dtype(lanes.word_bits), dtype(lanes.lower)
    read = 0
    for row in range(rows):
        key = np.bitwise_and(state, slot_mask, dtype=np.uint64)
        if several_blocks:
            key += block[row]
        entries[row], freq, bias = lookup.step(key)
        state = freq * (state >> shift) + bias
        low = state < lower
        k = int(np.count_nonzero(low))
        if k:
            if read + k > words.size:
                raise BitstreamError("rANS stream truncated")
            state[low] = (state[low] << word_bits) | words[read : read + k]
            read += k
    return entries.ravel()[:n], state, read


def _decode_lanes_serially(lanes: _Lanes, lookup: _Lookup, blocks: np.ndarray, precision: int) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`_decode_lanes` one symbol at a time, reading the words in the same order."""
    states, words = lanes.state.tolist(), lanes.words.tolist()
    begins, entry, freq, begin = lookup.search_lists()
    slot_mask, lower, word_bits = (1 << precision) - 1, lanes.lower, lanes.word_bits
    entries, read = [], 0
    for lane, block in zip(itertools.cycle(range(len(states))), blocks.tolist()):
        value = states[lane]
        key = block + (value & slot_mask)
        at = bisect.bisect_right(begins, key)
        entries.append(entry[at])
        value = freq[at] * (value >> precision) + key - begin[at]
        if value < lower:
            if read == len(words):
                raise BitstreamError("rANS stream truncated")
            value = value << word_bits | words[read]
            read += 1
        states[lane] = value
    return np.array(entries, dtype=np.int64), np.array(states, dtype=lanes.state.dtype), read


def _decode_serially(state: int, stack: list[int], lookup: _Lookup, blocks: np.ndarray, precision: int) -> np.ndarray:
    """The starter's symbols, whose tables start at ``blocks``, from its state and word stack;
    checks that it ends where the encoder started."""
    begins, entry, freq, begin = lookup.search_lists()
    slot_mask, entries = (1 << precision) - 1, []
    for block in blocks.tolist():
        key = block + (state & slot_mask)
        at = bisect.bisect_right(begins, key)
        entries.append(entry[at])
        state = freq[at] * (state >> precision) + key - begin[at]
        if state < STATE_LOWER and stack:
            state = state << WORD_BITS | stack.pop()
    if state != STARTER_INITIAL or stack:
        raise BitstreamError("corrupt rANS stream: it does not end in the initial state")
    return np.array(entries, dtype=np.int64)
