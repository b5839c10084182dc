"""nicbook.codec.adaptive: per-image scales, stretched tables, the encoder's choice, exact round trips
and broken payloads."""

from __future__ import annotations

import numpy as np
import pytest

from nicbook.codec.adaptive import IDLE, SCALES, UNIT, choose_scales, decode, encode, scaled_tables
from nicbook.entropy import FrequencyTables, decode_uvarint, encode_uvarint, rans_encode
from nicbook.errors import BitstreamError


def test_the_unit_scale_reproduces_the_model_tables_exactly(laplace_tables):
    tables = laplace_tables()
    scaled = scaled_tables(tables)
    assert scaled.num_tables == tables.num_tables * len(SCALES)
    for channel in range(tables.num_tables):
        unit = channel * len(SCALES) + UNIT
        assert np.array_equal(scaled.table(unit), tables.table(channel))
        assert scaled.offsets[unit] == tables.offsets[channel]


def test_stretching_widens_and_narrows_the_distribution(laplace_tables):
    tables = laplace_tables((3.0,))
    scaled = scaled_tables(tables)
    spreads = []
    for level in range(len(SCALES)):
        frequencies = scaled.table(level)[:-1].astype(float)
        values = scaled.offsets[level] + np.arange(frequencies.size)
        spreads.append(np.sum(frequencies * np.abs(values)) / frequencies.sum())
    assert np.all(np.diff(spreads) > 0)
    assert spreads[-1] / spreads[UNIT] == pytest.approx(SCALES[-1], rel=0.15)


def test_the_search_picks_narrow_tables_for_quiet_latents_and_wide_ones_for_busy_latents(laplace_tables):
    rng = np.random.default_rng(0)
    tables = laplace_tables((3.0, 3.0))
    busy = np.round(rng.laplace(0, 20, (16, 16))).astype(np.int64)
    symbols = np.stack([np.zeros((16, 16), np.int64), busy])
    choice = choose_scales(symbols, tables)
    assert choice.levels[0] == IDLE and choice.levels[1] > UNIT + 1  # level UNIT + 1: unit scale
    assert choice.shifts.shape == ((-(-16 // choice.block)) ** 2,)


def test_a_busy_region_gets_a_larger_block_scale_than_a_quiet_one(laplace_tables):
    rng = np.random.default_rng(1)
    tables = laplace_tables((2.0,) * 6)
    symbols = np.round(rng.laplace(0, 0.3, (6, 8, 16))).astype(np.int64)
    symbols[:, :, 8:] = np.round(rng.laplace(0, 12, (6, 8, 8)))
    choice = choose_scales(symbols, tables)
    blocks = choice.shifts.reshape(-(-8 // choice.block), -1)  # 8×16 latent positions in blocks
    half = blocks.shape[1] // 2
    assert blocks[:, half:].min() > blocks[:, :half].max()


def test_channels_that_ignore_the_regions_get_a_smaller_gain_than_those_that_follow_them(laplace_tables):
    rng = np.random.default_rng(3)
    tables = laplace_tables((2.0,) * 6)
    symbols = np.round(rng.laplace(0, 0.3, (6, 16, 16))).astype(np.int64)
    symbols[:4, :, 8:] = np.round(rng.laplace(0, 12, (4, 16, 8)))  # these four follow the regions
    symbols[4:] = np.round(rng.laplace(0, 4, (2, 16, 16)))  # these two are alike everywhere
    choice = choose_scales(symbols, tables)
    assert choice.gains[4:].max() < choice.gains[:4].min()


def test_the_encoder_takes_small_blocks_only_when_they_pay_for_their_side_information(laplace_tables):
    rng = np.random.default_rng(4)
    tables = laplace_tables((2.0,) * 8)
    alike = np.round(rng.laplace(0, 2, (8, 16, 16))).astype(np.int64)
    assert choose_scales(alike, tables).block == 2
    width = np.where((np.arange(16)[:, None] + np.arange(16)[None, :]) % 2 == 0, 0.2, 20.0)
    checkered = np.round(rng.laplace(0, 1, (8, 16, 16)) * width).astype(np.int64)
    assert choose_scales(checkered, tables).block == 1


@pytest.mark.parametrize("shape", [(4, 1, 1), (4, 5, 7), (4, 9, 13)])
def test_round_trips_exactly_with_escapes_and_beats_the_fixed_tables(shape, laplace_tables):
    rng = np.random.default_rng(2)
    tables = laplace_tables()
    symbols = np.round(rng.laplace(0, 6, shape)).astype(np.int64)
    symbols.flat[0] = 5000  # far outside every table: escaped
    data = encode(symbols, tables)
    assert np.array_equal(decode(data, shape, tables), symbols)
    if shape[1] * shape[2] > 50:
        channels = np.repeat(np.arange(shape[0]), shape[1] * shape[2])
        assert len(data) < len(rans_encode(symbols.ravel(), channels, tables))


def test_idle_latents_are_left_out_of_the_stream_and_lone_values_are_kept(laplace_tables):
    rng = np.random.default_rng(6)
    tables = laplace_tables((3.0,) * 8)
    symbols = np.zeros((8, 16, 16), np.int64)
    symbols[:2] = np.round(rng.laplace(0, 3, (2, 16, 16)))
    symbols[2, 5, 7] = 1  # one value in a channel otherwise idle, and in a quiet region
    data = encode(symbols, tables)
    assert np.array_equal(decode(data, symbols.shape, tables), symbols)
    choice = choose_scales(symbols, tables)
    assert (choice.levels[3:] == IDLE).all() and choice.levels[2] != IDLE
    with pytest.raises(BitstreamError):  # the stream holds fewer latents than all of them
        decode(data, symbols.shape, tables, idle=False)


def test_broken_side_information_and_short_payloads_raise_clear_errors(laplace_tables):
    tables = laplace_tables()
    shape = (4, 8, 8)
    data = encode(np.zeros(shape, np.int64), tables)
    with pytest.raises(BitstreamError, match="truncated side information"):
        decode(data[:1] + encode_uvarint(len(data) + 10) + data[1:], shape, tables)
    with pytest.raises(BitstreamError, match="block side 7"):
        decode(bytes([7]) + data[1:], shape, tables)
    with pytest.raises(BitstreamError, match="empty payload"):
        decode(b"", shape, tables)
    with pytest.raises(BitstreamError, match="side information"):
        decode(data[:2] + bytes([data[2] ^ 0xFF]) + data[3:], shape, tables)
    with pytest.raises(BitstreamError, match="tables"):
        decode(data, (5, 8, 8), tables)
    # A payload far too short for the latents it declares fails before they are decoded: the side
    # information of busy 4×64×64 latents, followed by only 16 of their bytes.
    busy = (4, 64, 64)
    data = encode(np.round(np.random.default_rng(0).laplace(0, 6, busy)).astype(np.int64), tables)
    side_length, side_start = decode_uvarint(data, 1)
    latents_start = side_start + side_length
    with pytest.raises(BitstreamError, match="too short"):
        decode(data[: latents_start + 16], busy, tables)


def test_damaged_side_information_is_refused_or_decodes_to_the_declared_shape(laplace_tables):
    """Every one-bit error in the side information (the CRC of the container catches them all; this
    is the layer below) raises BitstreamError or yields latents of the shape asked for."""
    tables = laplace_tables()
    shape = (4, 9, 13)
    data = encode(np.round(np.random.default_rng(5).laplace(0, 3, shape)).astype(np.int64), tables)
    side_length, side_start = decode_uvarint(data, 1)
    refused = 0
    for position in range(side_start, side_start + side_length):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            try:
                assert decode(bytes(damaged), shape, tables).shape == shape
            except BitstreamError:
                refused += 1
    assert refused > 0


def test_stretched_tables_are_built_from_integers_alone(laplace_tables):
    """Two table objects with the same integers give identical stretched tables (no float state)."""
    first, second = laplace_tables(), laplace_tables()
    a, b = scaled_tables(first), scaled_tables(second)
    assert a is not b
    assert np.array_equal(a.frequencies, b.frequencies) and np.array_equal(a.offsets, b.offsets)


def test_scaled_tables_are_kept_in_the_cache_folder_and_damaged_copies_are_rebuilt(laplace_tables, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    tables = laplace_tables()
    fresh = FrequencyTables.from_arrays(tables.to_arrays())  # a new object: not in memory yet
    built = scaled_tables(fresh)
    (stored,) = (tmp_path / "nicbook" / "tables").glob("scaled-*.npz")
    again = scaled_tables(FrequencyTables.from_arrays(tables.to_arrays()))  # read from the file
    assert again is not built and np.array_equal(again.frequencies, built.frequencies)
    assert np.array_equal(again.offsets, built.offsets) and np.array_equal(again.sizes, built.sizes)
    with np.load(stored) as arrays:  # the same digest, other frequencies: refused, rebuilt
        damaged = {name: arrays[name] for name in arrays.files}
    damaged["frequencies"] = damaged["frequencies"][::-1].copy()
    np.savez(stored, **damaged)
    rebuilt = scaled_tables(FrequencyTables.from_arrays(tables.to_arrays()))
    assert np.array_equal(rebuilt.frequencies, built.frequencies)
    stored.write_bytes(b"not a zip file")
    assert np.array_equal(scaled_tables(FrequencyTables.from_arrays(tables.to_arrays())).frequencies, built.frequencies)
