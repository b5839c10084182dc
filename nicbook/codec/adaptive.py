"""Forward-adaptive coding of a factorized model's latents: per-image scales as side information.

A factorized prior gives each latent channel one distribution, the same for every image and for
every place in an image. Images differ: a channel may be busier in one photo than on average over
the training set, and busier in foliage than in the sky. The encoder here measures that and tells
the decoder in a few hundred to a few thousand bits. Each channel's distribution is stretched by a scale ``s_c``,
and each square block of latent positions (16×16 or 32×32 pixels, whichever makes the smaller
file) moves the scales of all channels by a common factor ``a_b``, each channel as strongly as
its *gain* ``g_c`` says (``s_c · a_b ** g_c``: some channels follow the texture of a region, others
ignore it). Scales and factors lie on a grid of half-octave steps (:data:`SCALES`). Coding with a
distribution matched to the data saves rate (chapter 2: the cost of a code is the cross-entropy);
the scales are *side information*, the idea that the hyperprior of Ballé et al. (2018) learns
with a second network, chosen here by search.

The stretched tables are derived from the model's integer tables alone, with exactly rounded
arithmetic (no libm, no summation-order dependence), so encoder and decoder build the same tables
on every machine.

The smallest scale marks *idle* latents: a latent whose table lands on it (a channel idle in this
image, or quiet in this block) is zero and is not coded at all, so it costs neither bits nor the
rANS coder's time; the encoder's search prices a non-zero latent there as impossible.

Payload layout: ``block side u8 | side length (uvarint) | side information | latents``; the side
information is the channel levels, the channel gains and the block shifts, rANS-coded with fixed
tables; the latents are those not idle, in C order. Versions 3 and 6 of the ``.nic`` format (still
read, ``idle=False``) coded idle latents too; version 2 (see :func:`decode_version_2`) had
32×32-pixel blocks, unit gains and no block-side byte.
"""

from __future__ import annotations

import hashlib
import io
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nicbook import data
from nicbook.codec.container import arrays_digest
from nicbook.entropy import FrequencyTables, rans_decode, rans_encode
from nicbook.entropy.rans import STREAM_FORMAT, check_capacity
from nicbook.entropy.bits import decode_uvarint, encode_uvarint
from nicbook.entropy.pmf import quantize_pmf
from nicbook.errors import BitstreamError

__all__ = [
    "BLOCK_SIDES", "GAINS", "MAX_SHIFT", "SCALES", "ScaleChoice", "choose_scales", "decode",
    "decode_version_2", "encode", "scaled_tables",
]  # fmt: skip

#: The stretch factors, half an octave apart (literal values, so every machine uses the same ones).
SCALES: tuple[float, ...] = (
    0.125, 0.1767766952966369, 0.25, 0.3535533905932738, 0.5, 0.7071067811865476, 1.0,
    1.4142135623730951, 2.0, 2.8284271247461903, 4.0, 5.656854249492381, 8.0,
)  # fmt: skip
UNIT = SCALES.index(1.0)
#: A channel's level, and its level in a block once moved by the block's shift: 0 marks *idle*
#: latents (all zero, not coded: files of version 8 on), level ``l >= 1`` stretches by ``SCALES[l - 1]``.
IDLE = 0
LEVELS = len(SCALES) + 1
#: The search's price of a non-zero latent at the idle level: above any other choice's cost, yet
#: small enough that sums of it stay exact in int64 and float64.
IMPOSSIBLE = 1 << 36
#: Sides of the square blocks of latent positions that share a factor; the encoder tries each.
BLOCK_SIDES = (1, 2)
#: How strongly a channel follows its block's factor: ``GAINS[k] = k / 2``.
GAINS: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
UNIT_GAIN = GAINS.index(1.0)
#: Largest step, in grid steps of :data:`SCALES`, a block's factor moves a unit-gain channel.
MAX_SHIFT = 3
#: How many times the encoder alternates between channel levels, block shifts and channel gains.
SEARCH_ROUNDS = 3
#: Largest latent magnitude the encoder's search prices exactly (larger ones count as this).
SEARCH_RANGE = 64
#: Resolution of the encoder's search: prices of symbols in units of 1/PRICE_UNITS bit.
PRICE_UNITS = 1024

# Fixed tables of the side information, shaped after the choices made on held-out training photos:
# channel levels (many channels are idle in a given image), block shifts (mostly at or below
# zero: the training patches were busier than an average block; one table per block side) and
# channel gains.
_LEVEL_WEIGHTS = (27, 0.1, 0.1, 0.7, 13, 24, 15, 16, 4.6, 0.1, 0.1, 0.1, 0.1, 0.1)  # idle, then SCALES
_SCALE_WEIGHTS = (20, 0.1, 0.1, 3, 7, 8, 8, 6, 1.5, 0.2, 0.1, 0.1, 0.1)  # levels before idle ones (versions 2 to 6)
_SHIFT_WEIGHTS = (9, 15, 21, 30, 19, 5, 1)  # 32×32-pixel blocks; also version 2's table
_SMALL_SHIFT_WEIGHTS = (15, 13, 16, 30, 20, 5, 1.3)  # 16×16-pixel blocks
_GAIN_WEIGHTS = (39, 3, 40, 12, 7)
_SCALE_TABLE, _GAIN_TABLE, _LEVEL_TABLE = 0, 2, 4
_SHIFT_TABLE = {2: 1, 1: 3}  # block side -> table
_SIDE_TABLES = FrequencyTables.from_pmfs(
    [np.array(w) for w in (_SCALE_WEIGHTS, _SHIFT_WEIGHTS, _GAIN_WEIGHTS, _SMALL_SHIFT_WEIGHTS, _LEVEL_WEIGHTS)],
    [0, -MAX_SHIFT, 0, -MAX_SHIFT, 0],
    precision=12,
    escape_probability=2.0**-12,
)
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Changes whenever :func:`_stretched_table` would give other tables: older cache files are ignored.
SCALED_TABLES_VERSION = 1


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

    Building them takes about a third of a second, so they are kept per tables object and in the
    user's cache folder (:func:`nicbook.data.cache_dir`), under a digest of the model's tables and
    of how they are stretched; a cached file is used only if its contents match their own digest.
    """
    if tables not in _CACHE:
        path = data.cache_dir() / "tables" / f"scaled-{_digest(tables.to_arrays())}.npz"
        _CACHE[tables] = _read_cached(path) or _build_scaled(tables, path)
    return _CACHE[tables]


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of named arrays and of the stretching (scales, version of the construction)."""
    stretching = hashlib.sha256(repr((SCALES, SCALED_TABLES_VERSION)).encode())
    return arrays_digest(arrays, stretching).hexdigest()[:32]


def _read_cached(path: Path) -> FrequencyTables | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files if name != "digest"}
            if str(stored["digest"]) != _digest(arrays):
                return None
        return FrequencyTables.from_arrays(arrays)
    except (OSError, KeyError, ValueError):
        return None


def _build_scaled(tables: FrequencyTables, path: Path) -> FrequencyTables:
    built, offsets = [], []
    for channel in range(tables.num_tables):
        frequencies, offset = tables.table(channel), int(tables.offsets[channel])
        for scale in SCALES:
            table, first = _stretched_table(frequencies, offset, scale, tables.precision)
            built.append(table)
            offsets.append(first)
    scaled = FrequencyTables(np.concatenate(built), [table.size - 1 for table in built], offsets, tables.precision)
    arrays = scaled.to_arrays()
    buffer = io.BytesIO()
    np.savez(buffer, digest=np.array(_digest(arrays)), **arrays)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data.write_atomically(path, buffer.getvalue())
    except OSError:  # a read-only or full cache: build the tables again next time
        pass
    return scaled


@dataclass(frozen=True)
class ScaleChoice:
    """The side information of one image: which scaled table codes each latent.

    ``levels`` ``(C,)``: each channel's level (:data:`IDLE`, or ``l`` for ``SCALES[l - 1]``);
    ``gains`` ``(C,)``: each channel's gain, an index into :data:`GAINS`; ``shifts`` ``(blocks,)``:
    each block's factor in grid steps (``-MAX_SHIFT..MAX_SHIFT``), blocks of ``block × block``
    latent positions row-major; ``floor``: the lowest level a shift moves a channel to (:data:`IDLE`;
    the smallest scale in files of version 6 and before, which have no idle latents).
    """

    block: int
    levels: np.ndarray
    gains: np.ndarray
    shifts: np.ndarray
    floor: int = IDLE

    def block_tables(self) -> np.ndarray:
        """Scaled-table index (:func:`scaled_tables`) of every channel in every block, ``(C, blocks)``:
        -1 where its latents are idle."""
        moved = self.levels[:, None] + _level_offsets(self.gains[:, None], self.shifts[None, :])
        level = np.clip(moved, self.floor, LEVELS - 1)
        return np.where(level == IDLE, -1, np.arange(self.levels.size)[:, None] * len(SCALES) + level - 1)

    def table_indices(self, shape: tuple[int, int, int]) -> np.ndarray:
        """Scaled-table index of every latent of a ``(C, h, w)`` block in C order: -1 where idle."""
        _, height, width = shape
        return self.block_tables()[:, _block_of_positions(height, width, self.block).ravel()].ravel()


def _level_offsets(gains: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Grid steps a block shift moves channels of the given gain indices: ``round(GAINS[k] · shift)``,
    halves rounded up, in integers."""
    return (gains * shifts + 1) // 2


def _block_of_positions(height: int, width: int, block: int) -> np.ndarray:
    """Block number of every latent position ``(height, width)``, row-major over the blocks."""
    blocks_across = -(-width // block)
    return (np.arange(height)[:, None] // block) * blocks_across + np.arange(width)[None, :] // block


def _price_units(bits: np.ndarray) -> np.ndarray:
    """Bits as integers in units of 1/PRICE_UNITS bit: sums of them are exact in any order."""
    return np.round(bits * PRICE_UNITS).astype(np.int64)


def _side_prices(block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What each channel level, channel gain and block shift costs in the side information (search units)."""
    kinds = [(_LEVEL_TABLE, np.arange(LEVELS)), (_GAIN_TABLE, np.arange(len(GAINS))),
             (_SHIFT_TABLE[block], np.arange(-MAX_SHIFT, MAX_SHIFT + 1))]  # fmt: skip
    prices = (_SIDE_TABLES.information_bits(values, np.full(values.size, table)) for table, values in kinds)
    return tuple(_price_units(bits) for bits in prices)


def _search(symbols: np.ndarray, prices: np.ndarray, block: int) -> tuple[ScaleChoice, int]:
    """The cheapest :class:`ScaleChoice` with blocks of side ``block`` the search finds, and its cost
    (latents and side information) in search units.

    ``prices`` is the price of every clipped value under every scaled table (:func:`_price_list`).
    Starting from unit scales, it alternates: the best level of each channel given the rest, the
    best shift of each block, the best gain of each channel. All sums are of integers, so the
    choice does not depend on the order of summation (the number of threads).
    """
    channels, height, width = symbols.shape
    # Only the values that occur are priced: fewer, the smaller the latents (the sums are the same).
    reach = min(SEARCH_RANGE, int(np.abs(symbols).max(initial=0)))
    steps, span = LEVELS, 2 * reach + 1
    clipped = np.clip(symbols.reshape(channels, -1), -reach, reach) + reach
    price = np.ascontiguousarray(prices.reshape(channels, steps, -1)[..., SEARCH_RANGE - reach : SEARCH_RANGE + reach + 1])
    # Most latents are zero: a block's zeros are priced per channel in one product (einsum's own
    # integer loop: a BLAS call would cost more in thread synchronisation), the other values one by one.
    zero = clipped == reach
    zero_positions = zero.astype(np.int64)
    busy_channel, busy_position = np.nonzero(~zero)
    busy_rows = busy_channel * (steps * span) + clipped[busy_channel, busy_position]
    position_block = _block_of_positions(height, width, block).ravel()
    blocks = int(position_block.max()) + 1
    level_price, gain_price, shift_price = _side_prices(block)
    moves = np.arange(-MAX_SHIFT, MAX_SHIFT + 1)

    def tally(shifts: np.ndarray) -> np.ndarray:
        """How often each channel has each value in blocks of each shift, ``(C, move, value)``."""
        move_of_position = (shifts + MAX_SHIFT)[position_block]
        keys = (np.arange(channels)[:, None] * moves.size + move_of_position) * span + clipped
        counts = np.bincount(keys.ravel(), minlength=channels * moves.size * span)
        return counts.reshape(channels, moves.size, span)

    def channel_costs(counts: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Cost of each channel ``(C, candidates)`` coded at ``levels[c, candidate, move]``."""
        chosen = price[np.arange(channels)[:, None, None], np.clip(levels, 0, steps - 1)]
        return np.einsum("csv,cxsv->cx", counts, chosen)

    def block_costs(levels: np.ndarray) -> np.ndarray:
        """Cost of each block ``(blocks,)`` when every channel is coded at ``levels[c]``."""
        level = np.clip(levels, 0, steps - 1)
        per_position = np.einsum("c,cp->p", price[np.arange(channels), level, reach], zero_positions)
        busy = price.reshape(-1)[busy_rows + (level * span)[busy_channel]]
        per_position = per_position + np.bincount(busy_position, weights=busy, minlength=per_position.size)
        return np.bincount(position_block, weights=per_position, minlength=blocks)

    gains = np.full(channels, UNIT_GAIN)
    shifts = np.zeros(blocks, dtype=np.int64)
    counts = tally(shifts)
    for _ in range(SEARCH_ROUNDS):
        offsets = _level_offsets(gains[:, None, None], moves)  # (C, 1, move)
        levels = (channel_costs(counts, np.arange(steps)[:, None] + offsets) + level_price).argmin(axis=1)
        cost = np.stack([block_costs(levels + _level_offsets(gains, move)) for move in moves])
        shifts = moves[(cost + shift_price[:, None]).argmin(axis=0)]
        counts = tally(shifts)
        offsets = _level_offsets(np.arange(len(GAINS))[:, None], moves)  # (gain, move)
        gains = (channel_costs(counts, levels[:, None, None] + offsets) + gain_price).argmin(axis=1)
    final = levels[:, None, None] + _level_offsets(gains[:, None, None], moves)
    latent_cost = int(channel_costs(counts, final).sum())
    side_cost = level_price[levels].sum() + gain_price[gains].sum() + shift_price[shifts + MAX_SHIFT].sum()
    return ScaleChoice(block, levels, gains, shifts), latent_cost + int(side_cost)


def _price_list(tables: FrequencyTables) -> np.ndarray:
    """Price (1/PRICE_UNITS bit) of every value ``-SEARCH_RANGE..SEARCH_RANGE`` under every scaled
    table, flat in the order (channel, level, value)."""
    scaled = scaled_tables(tables)
    values = np.arange(-SEARCH_RANGE, SEARCH_RANGE + 1)
    table_of = np.repeat(np.arange(scaled.num_tables), values.size)
    prices = _price_units(scaled.information_bits(np.tile(values, scaled.num_tables), table_of))
    idle = np.broadcast_to(np.where(values == 0, 0, IMPOSSIBLE), (tables.num_tables, 1, values.size))
    return np.concatenate([idle, prices.reshape(tables.num_tables, len(SCALES), values.size)], axis=1).ravel()


def choose_scales(symbols: np.ndarray, tables: FrequencyTables) -> ScaleChoice:
    """The side information that makes the latents ``(C, h, w)`` cheap to code.

    Searches with each block side of :data:`BLOCK_SIDES` and keeps the cheaper (the first of equal
    cost). Any choice decodes correctly; the search only decides how small the file is.
    """
    prices = _price_list(tables)
    found = [_search(symbols, prices, block) for block in BLOCK_SIDES]
    return min(found, key=lambda candidate: candidate[1])[0]


def _side_kinds(block: int, channels: int, blocks: int, with_gains: bool = True, idle: bool = True) -> np.ndarray:
    """Side table of every side-information symbol: levels (with idle ones, or scales only), gains
    (if any), then shifts."""
    tables = [_LEVEL_TABLE if idle else _SCALE_TABLE, _GAIN_TABLE, _SHIFT_TABLE[block]]
    counts = [channels, channels if with_gains else 0, blocks]
    return np.repeat(tables, counts)


def encode(symbols: np.ndarray, tables: FrequencyTables) -> bytes:
    """Block side, side information, then the latents ``(C, h, w)`` coded with the chosen scaled tables."""
    choice = choose_scales(symbols, tables)
    side = rans_encode(
        np.concatenate([choice.levels, choice.gains, choice.shifts]),
        _side_kinds(choice.block, choice.levels.size, choice.shifts.size),
        _SIDE_TABLES,
    )
    indices = choice.table_indices(symbols.shape)
    coded = indices >= 0
    if symbols.reshape(-1)[~coded].any():
        raise RuntimeError("the scale search left a non-zero latent at the idle level")
    latents = rans_encode(symbols.reshape(-1)[coded], indices[coded], scaled_tables(tables))
    return bytes([choice.block]) + encode_uvarint(len(side)) + side + latents


def decode(
    data: bytes,
    shape: tuple[int, int, int],
    tables: FrequencyTables,
    stream_format: int = STREAM_FORMAT,
    idle: bool = True,
) -> np.ndarray:
    """Inverse of :func:`encode`: the integer latents ``(C, h, w)`` (``stream_format``: the rANS
    streams', 1 in files of version 3; ``idle=False``: idle latents were coded, versions 3 and 6).

    Raises :class:`~nicbook.errors.BitstreamError` for an unknown block side, side information out
    of range or a payload too short for the latents it claims (checked before they are decoded).
    """
    if not data or data[0] not in BLOCK_SIDES:
        found = f"block side {data[0]}" if data else "an empty payload"
        raise BitstreamError(f"{found} in the latent payload: corrupt file")
    return _decode(data, 1, shape, tables, data[0], True, stream_format, idle)


def decode_version_2(
    data: bytes, shape: tuple[int, int, int], tables: FrequencyTables, stream_format: int = 1
) -> np.ndarray:
    """The latents of a version-2 payload: 32×32-pixel blocks, unit gains, no block-side byte."""
    return _decode(data, 0, shape, tables, 2, False, stream_format, False)


def _decode(
    data: bytes,
    position: int,
    shape: tuple[int, int, int],
    tables: FrequencyTables,
    block: int,
    with_gains: bool,
    stream_format: int,
    idle: bool,
) -> np.ndarray:
    """The latents of a payload whose side information starts at ``position``."""
    channels, height, width = shape
    if channels != tables.num_tables:
        raise BitstreamError(f"{channels} latent channels but the model has {tables.num_tables} tables")
    side_length, position = decode_uvarint(data, position)
    if position + side_length > len(data):
        raise BitstreamError("truncated side information in the latent payload")
    position_block = _block_of_positions(height, width, block)
    blocks = int(position_block.max()) + 1
    try:
        kinds = _side_kinds(block, channels, blocks, with_gains, idle)
        side = rans_decode(data[position : position + side_length], kinds, _SIDE_TABLES, stream_format)
    except BitstreamError as error:
        raise BitstreamError(f"corrupt side information in the latent payload ({error})") from None
    levels, shifts = side[:channels], side[side.size - blocks :]
    gains = side[channels : 2 * channels] if with_gains else np.full(channels, UNIT_GAIN)
    floor = IDLE if idle else IDLE + 1  # without idle levels, shifts stop at the smallest scale
    levels = levels + floor  # files without idle levels number the scales from 0
    in_range = [(levels, floor, LEVELS - 1), (gains, 0, len(GAINS) - 1), (shifts, -MAX_SHIFT, MAX_SHIFT)]
    if not all(low <= values.min() and values.max() <= high for values, low, high in in_range):
        raise BitstreamError("side information out of range: corrupt latent payload")
    choice = ScaleChoice(block, levels, gains, shifts, floor)
    scaled = scaled_tables(tables)
    payload = data[position + side_length :]
    indices = choice.table_indices(shape)
    coded = indices >= 0
    check_capacity(len(payload), np.bincount(indices[coded], minlength=scaled.num_tables), scaled, f"{shape} latents")
    values = np.zeros(indices.size, dtype=np.int64)
    values[coded] = rans_decode(payload, indices[coded], scaled, stream_format)
    return values.reshape(shape)
