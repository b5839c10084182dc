"""nicbook.entropy.rans: the interleaved rANS coder with escapes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nicbook.entropy import rans
from nicbook.entropy import FrequencyTables, lane_count, quantize_pmf, rans_decode, rans_encode
from nicbook.errors import BitstreamError

DATA = Path(__file__).resolve().parents[1] / "data"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def round_trip(values, table_indices, tables, **kwargs):
    values = np.asarray(values, dtype=np.int64)
    indices = np.broadcast_to(np.asarray(table_indices), values.shape)
    data = rans_encode(values, table_indices, tables, **kwargs)
    np.testing.assert_array_equal(rans_decode(data, indices, tables), values)
    return data


def gaussian_tables(scales, precision=16):
    widths = np.ceil(4 * np.asarray(scales)).astype(int) + 1
    pmfs = [np.exp(-0.5 * (np.arange(-w, w + 1) / s) ** 2) for w, s in zip(widths, scales)]
    return FrequencyTables.from_pmfs(pmfs, -widths, precision)


@FAST
@given(
    size=st.integers(1, 4096),
    concentration=st.floats(0.01, 10),
    n=st.integers(0, 3000),
    offset=st.integers(-1000, 1000),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_any_alphabet(size, concentration, n, offset, seed):
    rng = np.random.default_rng(seed)
    pmf = rng.dirichlet(np.full(size, concentration))
    tables = FrequencyTables.from_pmfs([pmf], [offset])
    values = offset + rng.choice(size, n, p=pmf)
    round_trip(values, 0, tables)


@FAST
@given(
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=8),
    n=st.integers(1, 3000),
    lanes=st.one_of(st.none(), st.integers(1, 64)),
    seed=st.integers(0, 2**32 - 1),
    precision=st.integers(9, 16),
)
def test_round_trip_per_symbol_tables_with_escapes(sizes, n, lanes, seed, precision):
    rng = np.random.default_rng(seed)
    pmfs = [rng.dirichlet(np.ones(k)) for k in sizes]
    offsets = rng.integers(-50, 50, len(sizes))
    tables = FrequencyTables.from_pmfs(pmfs, offsets, precision)
    table_of = rng.integers(0, len(sizes), n)
    values = offsets[table_of] + rng.integers(-3, np.array(sizes)[table_of] + 3)
    far = rng.random(n) < 0.05
    values[far] = rng.integers(-(2**31), 2**31, far.sum())
    round_trip(values, table_of, tables, lanes=None if lanes is None else min(lanes, n))


def test_minimum_frequency_symbols_and_the_farthest_escapes():
    freq = quantize_pmf([1.0] + [0.0] * 9 + [1e-9], 16)  # ESCAPE last, everything else at 1
    tables = FrequencyTables(freq, [10], [0], 16)
    farthest = rans.MAX_ESCAPE_DISTANCE
    values = np.array([0] * 100 + list(range(10)) + [-1 - farthest, 10 + farthest, -1, 10, 2**31, -(2**31)])
    round_trip(values, 0, tables)
    with pytest.raises(ValueError, match="beyond its table's range"):
        rans_encode([11 + farthest], 0, tables)


def test_escapes_beyond_what_the_format_writes_are_refused(monkeypatch):
    tables = gaussian_tables([1.0])
    monkeypatch.setattr(rans, "MAX_ESCAPE_DISTANCE", 2**62)  # an encoder that writes what no release does
    data = rans_encode([0, 2**40, 1], 0, tables)
    monkeypatch.undo()
    with pytest.raises(BitstreamError, match="farther from its table's range than the format allows"):
        rans_decode(data, np.zeros(3, dtype=np.int64), tables)


def test_empty_and_single_symbol_messages():
    tables = gaussian_tables([1.0])
    assert rans_encode([], 0, tables) == b""
    assert rans_decode(b"", np.zeros(0, int), tables).size == 0
    data = round_trip([3], 0, tables)
    assert len(data) <= 8
    with pytest.raises(BitstreamError):
        rans_decode(b"\x00", np.zeros(0, int), tables)


@pytest.mark.parametrize("table_p1", [0.01, 0.1, 0.4, 0.9])
def test_cost_tracks_the_information_under_a_wrong_table(table_p1):
    # Bernoulli(0.1) symbols coded with the table of another probability: the stream costs the
    # information content under that table (what the learner computes) to within 0.1 %.
    values = (np.random.default_rng(1).random(100_000) < 0.1).astype(np.int64)
    tables = FrequencyTables.from_pmfs([[1 - table_p1, table_p1]], [0], escape_probability=2**-16)
    data = round_trip(values, 0, tables)
    information = tables.information_bits(values, 0).sum()
    assert abs(8 * len(data) / information - 1) <= 0.001


def test_cost_tracks_the_information_with_many_tables_and_lanes():
    rng = np.random.default_rng(0)
    scales = np.geomspace(0.2, 20, 16)
    tables = gaussian_tables(scales)
    table_of = rng.integers(0, 16, 200_000)
    values = np.rint(rng.normal(0, scales[table_of])).astype(np.int64)
    data = round_trip(values, table_of, tables)
    information = tables.information_bits(values, table_of).sum()
    assert rans.decode_uvarint(data)[0] > 20  # lanes
    assert abs(8 * len(data) / information - 1) <= 0.001


def test_lane_count_keeps_the_overhead_small_and_the_loop_bounded():
    assert lane_count(100_000, 47_000) == 0  # little information: the serial starter alone
    assert lane_count(1_000_000, 4e6) > 100  # a long one: many lanes, fast
    assert lane_count(10 * rans.MAX_ROWS, 0.0) == 10  # nearly no information: still <= MAX_ROWS rows
    assert lane_count(10, 1e9) == 10


def test_nearly_predictable_long_message_pays_little_for_lanes():
    # Like a neural codec's latents at a low rate: many symbols, few bits of information.
    tables = FrequencyTables.from_pmfs([[0.002, 0.996, 0.002]], offsets=[-1])
    values = np.random.default_rng(3).choice([-1, 0, 1], size=300_000, p=[0.002, 0.996, 0.002])
    information = tables.information_bits(values, np.zeros(values.size, dtype=np.int64)).sum()
    data = round_trip(values, np.zeros(values.size, dtype=np.int64), tables)
    assert 8 * len(data) <= 1.001 * information + 128  # 0.1 % and the lanes a long message must have


def test_million_symbols_with_per_symbol_tables():
    rng = np.random.default_rng(7)
    scales = np.geomspace(0.11, 64, 64)
    tables = gaussian_tables(scales)
    table_of = rng.integers(0, 64, 1_000_000)
    values = np.rint(rng.normal(0, scales[table_of])).astype(np.int64)
    round_trip(values, table_of, tables)


def test_messages_naming_a_missing_table_are_refused():
    tables = gaussian_tables([0.5, 3.0])
    with pytest.raises(ValueError, match="table indices"):
        rans_encode([1, 2], [0, 5], tables)
    with pytest.raises(ValueError, match="table indices"):
        rans_decode(rans_encode([1, 2], [0, 1], tables), np.array([0, 2]), tables)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), n=st.integers(1, 2000), cut=st.integers(1, 50), flips=st.integers(1, 8)
)
def test_corrupt_streams_fail_loudly_or_decode_wrongly(seed, n, cut, flips):
    rng = np.random.default_rng(seed)
    tables = gaussian_tables([0.7, 5.0])
    table_of = rng.integers(0, 2, n)
    values = np.rint(rng.normal(0, 3, n)).astype(np.int64)
    values[rng.random(n) < 0.02] = 10**9
    data = rans_encode(values, table_of, tables, lanes=min(n, 1 + seed % 8))
    with pytest.raises(BitstreamError):
        rans_decode(data[: max(0, len(data) - cut)], table_of, tables)
    corrupt = bytearray(data)
    for position in rng.integers(0, len(data), flips):
        corrupt[position] ^= 1 << int(rng.integers(8))
    if bytes(corrupt) != data:
        try:
            decoded = rans_decode(bytes(corrupt), table_of, tables)
        except BitstreamError:
            return
        assert decoded.shape == values.shape  # decoded, possibly wrongly: a container CRC catches it


def pinned_message():
    gaussian = np.exp(-0.5 * (np.arange(-20, 21) / 4.0) ** 2)
    tables = FrequencyTables.from_pmfs([gaussian, gaussian[15:26]], [-20, -5])
    return np.arange(-30, 30) * 3 // 2, np.arange(60) % 2, tables


def test_stream_format_is_stable():
    # A stream written by any machine or version must decode everywhere: pin one stream's bytes.
    values, table_of, tables = pinned_message()
    data = rans_encode(values, table_of, tables, lanes=3)
    assert hashlib.sha256(data).hexdigest() == "fdeb127bc0ecba10162be5e82243001de815368bf693414790dbfc92495df30b"
    np.testing.assert_array_equal(rans_decode(data, table_of, tables), values)


def test_streams_of_format_1_still_decode():
    # Written by the 32-bit coder of earlier releases (.nic versions 1 to 4): 5,000 values in
    # 5 lanes, 1 % of them escaped.
    data = (DATA / "rans-format1.bin").read_bytes()
    _, _, tables = pinned_message()
    rng = np.random.default_rng(11)
    table_of = rng.integers(0, 2, 5000)
    values = np.rint(rng.normal(0, 6, 5000)).astype(np.int64)
    values[rng.random(5000) < 0.01] = -(10**6)
    np.testing.assert_array_equal(rans_decode(data, table_of, tables, stream_format=1), values)
    with pytest.raises(BitstreamError):
        rans_decode(data, table_of, tables)  # not a format-2 stream


def test_forged_lane_counts_are_refused_before_decoding():
    tables = FrequencyTables.from_pmfs([[1e-4, 1.0, 1e-4]], [-1])
    n = 2 * rans.MAX_ROWS + 1
    values = np.zeros(n, dtype=np.int64)  # nearly no information: the fewest lanes allowed
    data = rans_encode(values, 0, tables)
    lanes, position = rans.decode_uvarint(data)
    assert lanes == rans.fewest_lanes(n) == 3
    indices = np.zeros(n, dtype=np.int64)
    for forged in (1, 2, 4000):  # too few for the message, or more than the side section can hold
        with pytest.raises(BitstreamError, match="declares"):
            rans_decode(rans.encode_uvarint(forged) + data[position:], indices, tables)
    with pytest.raises(ValueError, match="lanes must be in"):
        rans_encode(values, 0, tables, lanes=1)
    after = rans.decode_uvarint(data, position)[1]  # the starter's stride comes next
    for forged in (0, 1):  # no stride, or a starter of all the symbols beside lanes
        with pytest.raises(BitstreamError, match="starter stride"):
            rans_decode(data[:position] + rans.encode_uvarint(forged) + data[after:], indices, tables)


@pytest.mark.parametrize("lanes", [1, 5, rans.SERIAL_LANES, rans.SERIAL_LANES + 1, 40])
def test_the_serial_and_the_vectorised_lane_loops_write_and_read_the_same_streams(monkeypatch, lanes):
    # Few lanes are coded one symbol at a time in Python, more a row at a time in numpy: the two
    # loops must agree on every state and on the order of the words.
    rng = np.random.default_rng(lanes)
    tables = gaussian_tables([0.3, 1.0, 4.0, 20.0], precision=14)
    table_of = rng.integers(0, 4, 30_000)
    values = np.rint(rng.normal(0, np.array([0.3, 1.0, 4.0, 20.0])[table_of])).astype(np.int64)
    values[rng.random(values.size) < 0.001] = 10**6  # escapes
    ours = rans_encode(values, table_of, tables, lanes=lanes)
    monkeypatch.setattr(rans, "SERIAL_LANES", 0 if lanes <= rans.SERIAL_LANES else 10**6)
    other = rans_encode(values, table_of, tables, lanes=lanes)
    assert other == ours
    np.testing.assert_array_equal(rans_decode(ours, table_of, tables), values)
    with pytest.raises(BitstreamError):
        rans_decode(ours[:-8], table_of, tables)


def test_a_long_nearly_certain_tail_does_not_starve_the_starter():
    # The lanes' initial states come out of the starter: it samples the whole message, so a
    # message ending in many nearly certain symbols (a block coder's high frequencies, a neural
    # model's unused channels) still fills them, and the starter stays short.
    rng = np.random.default_rng(5)
    tables = FrequencyTables.from_pmfs([np.exp(-np.abs(np.arange(-40, 41)) / 4.0), [1e-5, 1.0, 1e-5]], [-40, -1])
    values = np.concatenate([np.rint(rng.laplace(0, 4, 200_000)), np.zeros(800_000)]).astype(np.int64)
    table_of = np.repeat([0, 1], [200_000, 800_000])
    data = round_trip(values, table_of, tables)
    lanes, position = rans.decode_uvarint(data)
    stride = rans.decode_uvarint(data, position)[0]
    assert lanes > 50 and values.size // stride < 20_000
    information = tables.information_bits(values, table_of).sum()
    assert 8 * len(data) <= 1.001 * information


@pytest.mark.parametrize("n", [100_000, 1_000_000])
def test_runs_of_the_first_symbol_of_a_table_cost_their_information(n):
    # Value 0 is the first entry of this table (cumulative frequency 0) and the likeliest: from a
    # tiny state, rANS would code it for nothing and the stream would fall below its information.
    tables = FrequencyTables.from_pmfs([[0.9, 0.1]], [0])
    values = np.zeros(n, dtype=np.int64)
    data = round_trip(values, np.zeros(n, dtype=np.int64), tables)
    information = tables.information_bits(values, 0).sum()
    assert information <= 8 * len(data) <= 1.001 * information + 64
