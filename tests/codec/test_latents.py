"""nicbook.codec.latents: the static coder (format version 5) and the payload-capacity guard."""

from __future__ import annotations

import numpy as np
import pytest

from nicbook.codec import decode_latents, latents
from nicbook.entropy import rans
from nicbook.errors import BitstreamError


def test_channel_indices_name_the_channel_of_every_symbol_in_c_order():
    indices = latents.channel_indices((3, 2, 2))
    assert indices.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    symbols = np.arange(12).reshape(3, 2, 2)
    assert np.array_equal(symbols.ravel()[indices == 1], symbols[1].ravel())


@pytest.mark.parametrize("shape", [(4, 1, 1), (4, 5, 7), (4, 16, 16)])
def test_latents_round_trip_exactly_with_escapes(laplace_tables, shape):
    rng = np.random.default_rng(0)
    symbols = np.round(rng.laplace(0, 4, shape)).astype(np.int64)
    symbols.flat[-1] = -7000  # far outside every table: escaped
    data = latents.encode(symbols, laplace_tables())
    decoded = latents.decode(data, shape, laplace_tables())
    assert decoded.dtype == np.int64 and np.array_equal(decoded, symbols)


def test_each_channel_is_coded_with_its_own_table(laplace_tables):
    """Zeros cost less in a narrow channel: a narrow table for channel 0 shrinks the payload."""
    symbols = np.zeros((2, 16, 16), np.int64)
    narrow_first = latents.encode(symbols, laplace_tables((0.3, 10.0)))
    both_wide = latents.encode(symbols, laplace_tables((10.0, 10.0)))
    assert len(narrow_first) < 0.7 * len(both_wide)


def test_a_payload_too_short_for_its_latents_is_refused_before_decoding(laplace_tables):
    tables = laplace_tables()
    data = latents.encode(np.zeros((4, 8, 8), np.int64), tables)
    with pytest.raises(BitstreamError, match="too short"):
        latents.decode(data, (4, 512, 512), tables)
    with pytest.raises(BitstreamError, match="tables"):
        latents.decode(data, (5, 8, 8), tables)
    cheapest = tables.cheapest_bits()  # the least any symbol of each table can cost
    need = float(cheapest.sum() * 10_000)
    rans.check_capacity(int(need // 8) + 1, np.full(4, 10_000), tables, "latents")
    with pytest.raises(BitstreamError, match="too short for 10 latents"):
        rans.check_capacity(0, np.full(4, 10_000), tables, "10 latents")


def test_payload_size_follows_the_model_s_rate_estimate(model, static_encoded):
    header, symbols, _ = decode_latents(static_encoded, model)
    estimate = model.entropy_model.channel_bits(symbols).sum()
    payload = latents.encode(symbols, model.entropy_model.tables)
    assert payload == static_encoded[header.payload_offset : -4]
    assert 0.9 * estimate <= 8 * len(payload) <= 1.02 * estimate + 128
