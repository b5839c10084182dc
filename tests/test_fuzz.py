"""Bounded fuzzing of every decoder: thousands of damaged inputs from fixed seeds.

Each decoder gets mutants of a valid stream (bits flipped, bytes replaced, inserted or removed,
the stream cut short) and must either decode them to an array of the expected shape or raise a
:class:`~nicbook.errors.NicbookError`: no other exception, no hang. The ``.nic`` and block-coder
mutants get their CRC-32 recomputed, so that they reach the payload instead of failing the
checksum.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from nicbook import codec
from nicbook.blockcoder import DCTCoder
from nicbook.entropy import FrequencyTables, HuffmanCode, rans_decode, rans_encode
from nicbook.errors import NicbookError
from nicbook.jpeg import decode as jpeg_decode

pytestmark = pytest.mark.slow
MUTANTS = 2000


def mutants(data: bytes, seed: int, count: int = MUTANTS):
    """``count`` damaged copies of ``data``: one to four edits each."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        mutant = bytearray(data)
        for _ in range(int(rng.integers(1, 5))):
            kind = int(rng.integers(5))
            position = int(rng.integers(len(mutant))) if mutant else 0
            if kind == 0 and mutant:
                mutant[position] ^= 1 << int(rng.integers(8))
            elif kind == 1 and mutant:
                mutant[position] = int(rng.integers(256))
            elif kind == 2:
                mutant[position:position] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
            elif kind == 3 and mutant:
                del mutant[position : position + int(rng.integers(1, 9))]
            else:
                del mutant[int(rng.integers(len(mutant) + 1)) :]
        yield bytes(mutant)


def survive(decode, data: bytes, seed: int, check=None, count: int = MUTANTS) -> int:
    """Decode ``count`` mutants; returns how many were refused (the rest decoded and passed ``check``)."""
    refused = 0
    for mutant in mutants(data, seed, count):
        try:
            result = decode(mutant)
        except NicbookError:
            refused += 1
            continue
        if check is not None:
            check(result)
    return refused


def test_nic_decoder(tiny_model, sample, with_crc):
    model = tiny_model(seed=1)
    image = sample[40:88, 60:124]
    data = codec.compress(image, model)
    static = codec.compress(image, model, adaptive=False)

    def decode(mutant):
        return codec.decompress(with_crc(mutant[:-4]) if len(mutant) >= 4 else mutant, model)

    for seed, stream in enumerate((data, static)):
        assert survive(decode, stream, seed, lambda result: result.shape == image.shape) > MUTANTS // 2


def test_jpeg_decoder(sample):
    buffer = io.BytesIO()
    Image.fromarray(sample[:48, :64]).save(buffer, "JPEG", quality=75)
    expect = lambda result: result.dtype == np.uint8 and result.shape[2] == 3  # noqa: E731
    assert survive(jpeg_decode, buffer.getvalue(), 10, expect) > 0


def test_rans_decoder():
    rng = np.random.default_rng(0)
    pmfs = [np.exp(-0.5 * (np.arange(-12, 13) / s) ** 2) for s in (0.8, 3.0, 6.0)]
    tables = FrequencyTables.from_pmfs(pmfs, [-12, -12, -12])
    table_of = rng.integers(0, 3, 3000)
    values = np.rint(rng.normal(0, 4, 3000)).astype(np.int64)
    values[::97] = 40  # some escapes
    for seed, lanes in enumerate((0, 3)):
        data = rans_encode(values, table_of, tables, lanes=lanes)
        refused = survive(lambda mutant: rans_decode(mutant, table_of, tables), data, 20 + seed, lambda r: r.shape == values.shape)
        assert refused > MUTANTS // 2


def test_huffman_decoder():
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 100, 40)
    code = HuffmanCode.from_frequencies(counts)
    symbols = rng.choice(40, 2000, p=counts / counts.sum())
    data = code.encode(symbols)
    survive(lambda mutant: code.decode(mutant, symbols.size), data, 30, lambda r: r.shape == symbols.shape)


@pytest.mark.parametrize("segment_symbols", [None, 150])
def test_block_coder_decoder(sample, with_crc, segment_symbols):
    # One segment, or twelve (of 8 blocks of 18 indices: most of them end inside a block row).
    coder = DCTCoder() if segment_symbols is None else DCTCoder(segment_symbols=segment_symbols)
    data = coder.encode(sample[:64, :96], 10.0)

    def decode(mutant):
        return coder.decode(with_crc(mutant[:-4], "little") if len(mutant) >= 4 else mutant)

    # Fewer mutants: every decode builds the stream's coding tables (about 50 ms).
    assert survive(decode, data, 40, lambda r: r.dtype == np.uint8, count=400) > 200
