"""Forward-adaptive coding of a factorized model's latents: per-image scales as side information.

A factorized prior gives each latent channel one distribution, the same for every image and for
every place in an image. Images differ: a channel may be busier in one photo than on average over
the training set, and busier in foliage than in the sky. The encoder here measures that and tells
the decoder in a few hundred bits. Each channel's distribution is stretched by a scale ``s_c``,
and each block of 2×2 latent positions (32×32 pixels) multiplies the scales of all channels by a
common factor ``a_b``; a latent is coded with the channel's table stretched by ``s_c · a_b``, on a
grid of half-octave steps (:data:`SCALES`). Coding with a distribution matched to the data saves
rate (chapter 2: the cost of a code is the cross-entropy); the scales are *side information*, the
idea that the hyperprior of Ballé et al. (2018) learns with a second network, chosen here by search.

The stretched tables are derived from the model's integer tables alone, with exactly rounded
arithmetic (no libm, no summation-order dependence), so encoder and decoder build the same tables
on every machine.
"""

from __future__ import annotations

import weakref

import numpy as np

from nicbook.entropy import FrequencyTables, rans_decode, rans_encode
from nicbook.entropy.bits import decode_uvarint, encode_uvarint
from nicbook.entropy.pmf import quantize_pmf
from nicbook.entropy.rans import STREAM_SLACK_BITS
from nicbook.errors import BitstreamError

__all__ = ["BLOCK", "MAX_SHIFT", "SCALES", "choose_scales", "decode", "encode", "scaled_tables"]

#: The stretch factors, half an octave apart (literal values, so every machine uses the same ones).
SCALES: tuple[float, ...] = (
    0.125, 0.1767766952966369, 0.25, 0.3535533905932738, 0.5, 0.7071067811865476, 1.0,
    1.4142135623730951, 2.0, 2.8284271247461903, 4.0, 5.656854249492381, 8.0,
)  # fmt: skip
UNIT = SCALES.index(1.0)
#: Side of the square blocks of latent positions that share a scale factor.
BLOCK = 2
#: Largest step, in grid steps of :data:`SCALES`, a block's factor moves its channels' scales.
MAX_SHIFT = 3
#: How many times the encoder alternates between choosing channel scales and block factors.
SEARCH_ROUNDS = 3
#: Largest latent magnitude the encoder's search tallies exactly (larger ones count as this).
SEARCH_RANGE = 64
#: Resolution of the encoder's search: prices of symbols in units of 1/PRICE_UNITS bit.
PRICE_UNITS = 1024

# Fixed tables of the side information, shaped after the choices made on held-out training photos:
# channel levels (many channels are idle in a given image and take the smallest scale) and block
# shifts (mostly at or below zero: the training patches were busier than an average block).
_LEVEL_WEIGHTS = (20, 0.1, 0.1, 3, 7, 8, 8, 6, 1.5, 0.2, 0.1, 0.1, 0.1)
_SHIFT_WEIGHTS = (9, 15, 21, 30, 19, 5, 1)
_SIDE_TABLES = FrequencyTables.from_pmfs(
    [np.array(_LEVEL_WEIGHTS), np.array(_SHIFT_WEIGHTS)],
    [0, -MAX_SHIFT],
    precision=12,
    escape_probability=2.0**-12,
)
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _stretched_table(frequencies: np.ndarray, offset: int, scale: float, precision: int):
    """One table stretched by ``scale``: its cumulative frequencies are interpolated linearly
    between the original half-integer boundaries (a density that is flat within each original
    bin). Returns the quantized frequencies (regular symbols, then ESCAPE) and the new offset."""
    regular, escape = frequencies[:-1].astype(np.float64), float(frequencies[-1])
    knots = np.concatenate(([0.0], np.cumsum(regular)))  # CDF at offset - 1/2 + j (exact integers)
    first = int(np.floor((offset - 0.5) * scale + 0.5))
    last = int(np.ceil((offset + regular.size - 0.5) * scale - 0.5))
    boundaries = (np.arange(first, last + 2, dtype=np.float64) - 0.5) / scale - (offset - 0.5)
    boundaries = np.clip(boundaries, 0.0, float(regular.size))
    index = np.minimum(np.floor(boundaries), regular.size - 1).astype(np.int64)
    cdf = knots[index] + (boundaries - index) * regular[index]
    pmf = np.diff(cdf)
    return quantize_pmf(np.append(pmf, escape), precision), first


def scaled_tables(tables: FrequencyTables) -> FrequencyTables:
    """The model's ``C`` tables stretched by every scale of :data:`SCALES`: table ``c * len(SCALES) + j``
    is channel ``c`` at scale ``SCALES[j]`` (the unit scale reproduces the original table exactly).
    Built once per tables object and cached."""
    if tables not in _CACHE:
        built, offsets = [], []
        for channel in range(tables.num_tables):
            frequencies, offset = tables.table(channel), int(tables.offsets[channel])
            for scale in SCALES:
                table, first = _stretched_table(frequencies, offset, scale, tables.precision)
                built.append(table)
                offsets.append(first)
        sizes = [table.size - 1 for table in built]
        _CACHE[tables] = FrequencyTables(np.concatenate(built), sizes, offsets, tables.precision)
    return _CACHE[tables]


def _block_of_positions(height: int, width: int) -> np.ndarray:
    """Block number of every latent position ``(height, width)``, row-major over the blocks."""
    blocks_across = -(-width // BLOCK)
    return (np.arange(height)[:, None] // BLOCK) * blocks_across + np.arange(width)[None, :] // BLOCK


def _tables_of_blocks(levels: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Scaled-table index of every channel in every block, ``(C, blocks)``."""
    level = np.clip(levels[:, None] + shifts[None, :], 0, len(SCALES) - 1)
    return np.arange(levels.size)[:, None] * len(SCALES) + level


def table_indices(levels: np.ndarray, shifts: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Scaled-table index of every latent of a ``(C, h, w)`` block in C order."""
    _, height, width = shape
    return _tables_of_blocks(levels, shifts)[:, _block_of_positions(height, width).ravel()].ravel()


def _side_prices() -> tuple[np.ndarray, np.ndarray]:
    """What each channel level and each block shift costs in the side information (search units)."""
    levels = np.arange(len(SCALES))
    shifts = np.arange(-MAX_SHIFT, MAX_SHIFT + 1)
    prices = _SIDE_TABLES.information_bits(
        np.concatenate([levels, shifts]), np.repeat([0, 1], [levels.size, shifts.size])
    )
    prices = np.round(prices * PRICE_UNITS).astype(np.int64)
    return prices[: levels.size], prices[levels.size :]


def choose_scales(symbols: np.ndarray, tables: FrequencyTables) -> tuple[np.ndarray, np.ndarray]:
    """Channel levels ``(C,)`` and block shifts ``(blocks,)`` that make the latents cheap to code.

    Tallies each channel's symbols per block, prices every tally under every scaled table, then
    alternates: the best level of each channel given the block shifts, the best shift of each block
    given the levels. Any choice decodes correctly; the search only decides how small the file is.
    """
    channels, height, width = symbols.shape
    scaled, steps = scaled_tables(tables), len(SCALES)
    values = np.arange(-SEARCH_RANGE, SEARCH_RANGE + 1)
    table_of = np.arange(channels * steps)
    prices = scaled.information_bits(
        np.tile(values, table_of.size), np.repeat(table_of, values.size)
    ).reshape(channels, steps, values.size)
    # Integer prices (1/1024 bit) make every sum below exact: the choice, and so the file, does not
    # depend on the order of summation (the number of threads).
    prices = np.round(prices * PRICE_UNITS).astype(np.int64)
    block = _block_of_positions(height, width).ravel()
    blocks = int(block.max()) + 1
    bins = np.clip(symbols.reshape(channels, -1), -SEARCH_RANGE, SEARCH_RANGE) + SEARCH_RANGE
    bits = np.empty((channels, blocks, steps), dtype=np.int32)  # (channel, block, level); sums are int64
    for channel in range(channels):
        tally = np.bincount(block * values.size + bins[channel], minlength=blocks * values.size)
        bits[channel] = tally.reshape(blocks, values.size) @ prices[channel].T
    shifts = np.zeros(blocks, dtype=np.int64)
    moves = np.arange(-MAX_SHIFT, MAX_SHIFT + 1)
    every_block = np.arange(blocks)
    level_price, shift_price = _side_prices()
    for _ in range(SEARCH_ROUNDS):
        shifted = np.clip(np.arange(steps)[:, None] + shifts[None, :], 0, steps - 1)  # (level, block)
        cost = bits[:, every_block[None, :], shifted].sum(axis=2)  # (channel, level)
        levels = (cost + level_price[None, :]).argmin(axis=1)
        moved = np.clip(levels[:, None] + moves[None, :], 0, steps - 1)  # (channel, move)
        cost = bits[np.arange(channels)[:, None, None], every_block[None, None, :], moved[:, :, None]]
        shifts = moves[(cost.sum(axis=0) + shift_price[:, None]).argmin(axis=0)]
    return levels.astype(np.int64), shifts


def encode(symbols: np.ndarray, tables: FrequencyTables) -> bytes:
    """Side information then the latents ``(C, h, w)``, rANS-coded with the chosen scaled tables."""
    levels, shifts = choose_scales(symbols, tables)
    side = rans_encode(
        np.concatenate([levels, shifts]),
        np.repeat([0, 1], [levels.size, shifts.size]),
        _SIDE_TABLES,
    )
    latents = rans_encode(
        symbols.reshape(-1), table_indices(levels, shifts, symbols.shape), scaled_tables(tables)
    )
    return encode_uvarint(len(side)) + side + latents


def decode(data: bytes, shape: tuple[int, int, int], tables: FrequencyTables) -> np.ndarray:
    """Inverse of :func:`encode`: the integer latents ``(C, h, w)``.

    Raises :class:`~nicbook.errors.BitstreamError` for side information out of range or a payload
    too short for the latents it claims (checked before they are decoded).
    """
    channels, height, width = shape
    if channels != tables.num_tables:
        raise BitstreamError(f"{channels} latent channels but the model has {tables.num_tables} tables")
    side_length, position = decode_uvarint(data)
    if position + side_length > len(data):
        raise BitstreamError("truncated side information in the latent payload")
    block = _block_of_positions(height, width)
    blocks = int(block.max()) + 1
    try:
        side = rans_decode(
            data[position : position + side_length],
            np.repeat([0, 1], [channels, blocks]),
            _SIDE_TABLES,
        )
    except BitstreamError as error:
        raise BitstreamError(f"corrupt side information in the latent payload ({error})") from None
    levels, shifts = side[:channels], side[channels:]
    in_range = 0 <= levels.min() and levels.max() < len(SCALES)
    if not (in_range and -MAX_SHIFT <= shifts.min() and shifts.max() <= MAX_SHIFT):
        raise BitstreamError("side information out of range: corrupt latent payload")
    scaled = scaled_tables(tables)
    payload = data[position + side_length :]
    positions = np.bincount(block.ravel(), minlength=blocks)
    needed = float((scaled.cheapest_bits()[_tables_of_blocks(levels, shifts)] * positions).sum())
    if needed > 8 * len(payload) + STREAM_SLACK_BITS:
        raise BitstreamError(
            f"the payload of {len(payload)} bytes is too short for {shape} latents: corrupt or forged file"
        )
    values = rans_decode(payload, table_indices(levels, shifts, shape), scaled)
    return values.reshape(shape)
