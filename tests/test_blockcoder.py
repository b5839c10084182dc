"""nicbook.blockcoder: the block transform coder with a DCT or KLT basis."""

from __future__ import annotations

import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nicbook import blockcoder
from nicbook.blockcoder import BlockTransformCoder, DCTCoder, KLTCoder, read_header, training_klt_coder
from nicbook.data import sample_image, stand_in_training_image
from nicbook.deadzone import dequantize
from nicbook.errors import BitstreamError, ImageFormatError, UnsupportedFormatError
from nicbook.evaluation import rd_curve
from nicbook.metrics import bpp, psnr
from nicbook.transforms import dct_basis

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A 96×128 crop of the sample image: small enough to keep every test fast."""
    return np.ascontiguousarray(sample_image()[100:196, 150:278])


@pytest.fixture(scope="module")
def klt(image: np.ndarray) -> KLTCoder:
    rng = np.random.default_rng(3)
    training = [np.clip(image.astype(int) + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)]
    return KLTCoder.learn(training, n_blocks=500, seed=0)


def test_round_trip_reproduces_quantized_coefficients_exactly(image, klt):
    for coder in (DCTCoder(), klt, KLTCoder.from_image(image)):
        data = coder.encode(image, 6.0)
        expected = coder.quantized_coefficients(image, 6.0)
        assert np.array_equal(coder.decode_coefficients(data), expected)
        decoded = coder.decode(data)
        assert decoded.shape == image.shape and decoded.dtype == np.uint8


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    block_size=st.sampled_from([2, 4, 8]),
    step=st.floats(0.5, 200.0),
    seed=st.integers(0, 2**16),
    embed=st.booleans(),
)
def test_round_trip_property(height, width, block_size, step, seed, embed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    coder = BlockTransformCoder(dct_basis(block_size), embed_basis=embed)
    data = coder.encode(image, step)
    assert np.array_equal(DCTCoder(block_size).decode_coefficients(data), coder.quantized_coefficients(image, step))
    assert DCTCoder(block_size).decode(data).shape == image.shape


def test_an_image_whose_indices_are_all_zero_round_trips():
    image = np.full((1, 1, 3), 128, dtype=np.uint8)
    coder = DCTCoder(block_size=2)
    assert not coder.quantized_coefficients(image, 122.0).any()
    data = coder.encode(image, 122.0)
    assert not coder.decode_coefficients(data).any()
    assert np.array_equal(coder.decode(data), image)


def test_any_coder_decodes_a_dct_stream(image, klt):
    data = DCTCoder().encode(image, 8.0)
    assert np.array_equal(klt.decode(data), DCTCoder().decode(data))
    small = DCTCoder(4).encode(image, 8.0)  # of any block size
    assert np.array_equal(DCTCoder().decode(small), DCTCoder(4).decode(small))
    assert np.array_equal(klt.decode(small), DCTCoder(4).decode(small))


def test_psnr_rises_and_rate_falls_with_step(image, klt):
    steps = [4.0, 8.0, 16.0, 32.0]
    for coder in (DCTCoder(), klt):
        bpps, psnrs = rd_curve(coder, [image], steps)
        assert np.all(np.diff(psnrs) < 0), psnrs
        assert np.all(np.diff(bpps) < 0), bpps


def test_dct_coder_quality_on_sample_image():
    image = sample_image()
    data = DCTCoder().encode(image, 8.0)
    decoded = DCTCoder().decode(data)
    # Uniform quantization of an orthonormal transform: MSE about step²/12 or less (dead zone zeros).
    assert psnr(image, decoded) > 36.0
    assert bpp(data, image.shape) < 2.0


def test_fine_step_is_near_lossless(image):
    decoded = DCTCoder().decode(DCTCoder().encode(image, 0.5))
    assert psnr(image, decoded) > 45.0


def test_klt_basis_is_orthonormal_and_sorted(image, klt):
    basis = klt.basis
    assert basis.shape == (64, 64)
    assert np.allclose(basis @ basis.T, np.eye(64), atol=1e-9)
    variances = np.var(blockcoder.sample_luma_blocks([image]) @ basis.T, axis=0)
    assert variances[0] > variances[10] > variances[-1]


def test_embedded_basis_is_counted_in_the_rate(image):
    sending = KLTCoder.from_image(image)
    shared = KLTCoder(sending.basis)
    with_basis, without_basis = sending.encode(image, 8.0), shared.encode(image, 8.0)
    # One float16 row of the basis per coefficient that is not zero in every block of every channel.
    used_rows = np.any(sending.quantized_coefficients(image, 8.0) != 0, axis=(0, 1)).sum()
    assert 0 < used_rows < 64
    assert len(with_basis) - len(without_basis) == used_rows * 64 * 2
    # The embedded stream decodes without knowing the basis beforehand.
    assert np.array_equal(DCTCoder().decode(with_basis), sending.decode(with_basis))


def test_shared_basis_mismatch_is_refused(image, klt):
    data = klt.encode(image, 8.0)
    other = KLTCoder(dct_basis(8)[::-1].copy())
    with pytest.raises(BitstreamError, match="different basis"):
        other.decode(data)


def test_header_fields(image):
    data = DCTCoder(frequency_weighting=1.0).encode(image, 10.0)
    header = read_header(data)
    assert (header.basis_kind, header.block_size, header.height, header.width) == ("dct", 8, 96, 128)
    assert header.step == pytest.approx(10.0) and header.frequency_weighting == pytest.approx(1.0)


def test_frequency_weighting_coarsens_later_coefficients():
    steps = DCTCoder(frequency_weighting=2.0).steps(4.0)
    assert steps[0] == pytest.approx(4.0) and steps[-1] == pytest.approx(12.0)
    assert np.all(np.diff(steps) > 0)


@pytest.mark.parametrize("shape", [(1, 1), (17, 33), (8, 8), (9, 1)])
def test_odd_image_sizes(shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    for block_size in (8, 4):
        coder = DCTCoder(block_size)
        data = coder.encode(image, 2.0)
        assert np.array_equal(coder.decode_coefficients(data), coder.quantized_coefficients(image, 2.0))
        assert coder.decode(data).shape == image.shape


def test_grayscale_like_image_spends_nothing_on_chroma(image):
    gray = np.repeat(image.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    coder = DCTCoder()
    data = coder.encode(gray, 8.0)
    indices = coder.decode_coefficients(data)
    assert not indices[1:].any()
    decoded = coder.decode(data)
    assert np.abs(decoded.astype(int)[..., 0] - decoded[..., 2]).max() <= 2
    assert len(data) < len(coder.encode(image, 8.0))


def test_flat_image(image):
    flat = np.full((40, 24, 3), 77, dtype=np.uint8)
    decoded = DCTCoder().decode(DCTCoder().encode(flat, 16.0))
    assert np.abs(decoded.astype(int) - 77).max() <= 8


def test_corrupt_and_truncated_streams_raise_bitstream_error(image):
    data = DCTCoder().encode(image, 8.0)
    coder = DCTCoder()
    for cut in (0, 3, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(BitstreamError):
            coder.decode(data[:cut])
    rng = np.random.default_rng(0)
    for position in rng.choice(len(data), 20, replace=False):
        corrupt = bytearray(data)
        corrupt[position] ^= 1 << int(rng.integers(8))
        with pytest.raises(BitstreamError):
            coder.decode(bytes(corrupt))
    with pytest.raises(BitstreamError, match="magic"):
        coder.decode(b"JUNK" + data[4:])


def test_streams_of_version_1_still_decode():
    """Written by the release before the rANS coder's format 2: the DCT coder at step 12 on a
    48×64 crop of matplotlib's Grace Hopper portrait (the sample image of that release, now the
    training stand-in). Coding the crop now gives the same image."""
    data = (DATA / "blockcoder-version1.nbtc").read_bytes()
    crop = stand_in_training_image()[100:148, 200:264]
    assert read_header(data).version == 1
    now = DCTCoder().encode(crop, step=12.0)
    assert read_header(now).version == blockcoder.VERSION == 3
    assert np.array_equal(DCTCoder().decode(data), DCTCoder().decode(now))


def test_streams_of_version_2_still_decode():
    """Written by the release before segmented payloads (one rANS stream for the whole image): the
    DCT coder at step 12 on the crop of the version-1 stream, and a KLT coder learned on a 37×53 crop
    of the sample image (4×4 blocks, embedded basis, frequency weighting 0.5) at step 6."""
    data = (DATA / "blockcoder-version2.nbtc").read_bytes()
    crop = stand_in_training_image()[100:148, 200:264]
    assert read_header(data).version == 2
    now = DCTCoder().encode(crop, step=12.0)
    assert np.array_equal(DCTCoder().decode_coefficients(data), DCTCoder().decode_coefficients(now))
    assert np.array_equal(DCTCoder().decode(data), DCTCoder().decode(now))
    klt = (DATA / "blockcoder-version2-klt.nbtc").read_bytes()
    header = read_header(klt)
    assert (header.version, header.basis_kind, header.block_size, header.height, header.width) == (2, "embedded", 4, 37, 53)
    indices = DCTCoder().decode_coefficients(klt)
    assert indices.shape == (3, 140, 16) and np.abs(indices).max() == 46
    assert zlib.crc32(indices.astype("<i8").tobytes()) == 2871290037  # as the writing release decoded it
    decoded = DCTCoder().decode(klt)
    assert decoded.shape == (37, 53, 3) and psnr(sample_image()[200:237, 300:353], decoded) > 35


def test_the_encoder_writes_the_pinned_version_3_stream():
    """4×4 DCT blocks at step 5 on a 45×70 crop of the sample image, in segments of at most 300
    indices: 13 blocks each, so that most segments begin and end inside a block row."""
    pinned = (DATA / "blockcoder-version3.nbtc").read_bytes()
    crop = sample_image()[200:245, 300:370]
    coder = DCTCoder(block_size=4, segment_symbols=300)
    assert coder.encode(crop, 5.0) == pinned
    assert np.array_equal(DCTCoder(4).decode_coefficients(pinned), coder.quantized_coefficients(crop, 5.0))
    assert psnr(crop, DCTCoder(4).decode(pinned)) > 35


def reference_decode(coder, image, step):
    """What decoding must give: the quantized coefficients, dequantized and synthesised in one go."""
    indices = coder.quantized_coefficients(image, step)
    return coder.synthesise(dequantize(indices, coder.steps(step)), image.shape[:2])


@pytest.mark.parametrize(
    ("shape", "block_size", "segment_symbols"),
    [
        ((1, 1), 8, 1),  # one block, one index a segment at most
        ((5, 300), 8, 200),  # one block row, cut inside it
        ((8, 64), 8, 2_000),  # one block row, whole
        ((37, 53), 4, 1),  # one block per segment
        ((37, 53), 4, 250),  # segments ending inside block rows
        ((61, 40), 8, 1_500),  # whole block rows per segment, the last segment shorter
        ((100, 33), 16, 10_000),
        ((70, 90), 2, blockcoder.SEGMENT_SYMBOLS),
    ],
)
def test_round_trip_across_segment_boundaries(shape, block_size, segment_symbols):
    rng = np.random.default_rng(sum(shape))
    ramp = np.add.outer(np.arange(shape[0]), 2 * np.arange(shape[1]))[..., None] + np.array([0, 40, 90])
    image = np.clip(ramp + rng.normal(0, 12, (*shape, 3)), 0, 255).astype(np.uint8)
    coder = DCTCoder(block_size, segment_symbols=segment_symbols)
    for step in (3.0, 40.0):
        data = coder.encode(image, step)
        assert np.array_equal(coder.decode_coefficients(data), coder.quantized_coefficients(image, step))
        decoded = coder.decode(data)
        # Exact but for the last bit of a matrix product over pieces of other sizes.
        assert decoded.shape == image.shape and np.abs(decoded.astype(int) - reference_decode(coder, image, step)).max() <= 1
    # Segment sizes change the payload only: the same indices.
    whole = DCTCoder(block_size).encode(image, 3.0)
    assert np.array_equal(DCTCoder(block_size).decode_coefficients(whole), coder.decode_coefficients(coder.encode(image, 3.0)))


def test_an_image_with_all_indices_zero_in_many_segments():
    image = np.full((50, 70, 3), 128, dtype=np.uint8)
    image[..., 0] = 129
    coder = DCTCoder(4, segment_symbols=1)
    data = coder.encode(image, 30.0)
    assert not coder.decode_coefficients(data).any()
    assert len(data) == blockcoder._HEADER.size + 3 * 16 + 4  # a zero per table, no payload
    assert np.array_equal(coder.decode(data), reference_decode(coder, image, 30.0))
    with pytest.raises(BitstreamError, match="all-zero"):
        coder.decode(bytes(data[:-4]) + b"\x00" + zlib.crc32(data[:-4] + b"\x00").to_bytes(4, "little"))


def test_segments_bound_the_decoders_memory():
    """A 1.5-megapixel photo-like image (the sample image, mirrored and tiled; 2.5 bpp at step 4)
    decodes in its own 3 bytes per pixel and about 6 more (one segment of indices and a piece of
    pixels at a time; the whole image at once took over 300); coding it holds its int16 indices
    (6 bytes per pixel) and a segment's working memory."""
    tile = np.concatenate([sample_image(), sample_image()[::-1]])
    image = np.ascontiguousarray(np.tile(tile, (1, 2, 1))[:, :1500])
    coder = DCTCoder()
    tracemalloc.start()
    try:
        data = coder.encode(image, 4.0)
        encoding = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        decoded = coder.decode(data)
        decoding = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    pixels = image.shape[0] * image.shape[1]
    assert len(blockcoder._segments(coder._parse(data))) > 3
    assert psnr(image, decoded) > 40
    assert decoding / pixels < 3 + 7, decoding / pixels
    assert encoding / pixels < 20, encoding / pixels


def test_forged_headers_with_valid_crc_are_rejected(image, with_crc):
    data = DCTCoder().encode(image, 8.0)
    body = bytearray(data[:-4])
    huge = bytearray(body)
    huge[7:15] = (1 << 20).to_bytes(4, "little") * 2  # height and width of a million pixels
    with pytest.raises(BitstreamError):
        DCTCoder().decode(with_crc(bytes(huge), "little"))
    version = bytearray(body)
    version[4] = 9
    with pytest.raises(UnsupportedFormatError):
        DCTCoder().decode(with_crc(bytes(version), "little"))
    taller = bytearray(body)
    taller[7:11] = (4000).to_bytes(4, "little")
    with pytest.raises(BitstreamError):
        DCTCoder().decode(with_crc(bytes(taller), "little"))


def peak_of(function, *args):
    """``function(*args)``'s exception and the most memory it held, in bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(BitstreamError) as refusal:
            function(*args)
        return refusal.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_forged_sizes_and_segments_are_refused_before_decoding(image, with_crc):
    coder = DCTCoder(segment_symbols=2_000)
    data = coder.encode(image, 8.0)
    payload = coder._parse(data).payload
    start = len(data) - 4 - len(payload)  # where the payload begins: blocks per segment, then segments
    per_segment, first = blockcoder.decode_uvarint(data, start)
    body = data[:-4]
    forgeries = {
        "4096×4096 pixels": body[:7] + (4096).to_bytes(4, "little") * 2 + body[15:],
        "2 rows more": body[:7] + (98).to_bytes(4, "little") + body[11:],
        "longer segments": body[:start] + blockcoder.encode_uvarint(per_segment + 1) + body[first:],
        "huge segments": body[:start] + blockcoder.encode_uvarint(1 << 20) + body[first:],
        "no segments": body[:start] + blockcoder.encode_uvarint(0) + body[first:],
        "a longer first segment": body[:first] + blockcoder.encode_uvarint(len(body)) + body[first + 1 :],
        "a byte after the last segment": body + b"\x00",
        "a truncated last segment": body[:-1],
    }
    for what, forged in forgeries.items():
        error, peak = peak_of(coder.decode, with_crc(forged, "little"))
        assert peak < 2**20, (what, peak)  # the 4096×4096 image alone would take 48 MiB
        assert "\n" not in str(error), what
    with pytest.raises(BitstreamError, match="too short"):
        coder.decode(with_crc(forgeries["4096×4096 pixels"], "little"))


def test_forged_tables_are_refused_before_they_are_built(with_crc):
    """Tables of ±16,384 for all 192 coefficients (about 6 million entries, a minute and 250 MiB to
    build) declared in a 1 KB stream."""
    header = blockcoder._HEADER.pack(blockcoder.MAGIC, blockcoder.VERSION, 0, 8, 8, 8, 1.0, 0.0, 0.0, 0)
    tables = (blockcoder.encode_uvarint(blockcoder.MAX_ABS_INDEX) + bytes((16, 200))) * 192
    error, peak = peak_of(DCTCoder().decode, with_crc(header + tables + b"\x01\x02\x00\x00", "little"))
    assert "tables" in str(error) and peak < 2**20
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="too small"):
        DCTCoder(32).encode(image, 0.05)  # 3,072 tables of thousands of entries


def test_invalid_inputs():
    coder = DCTCoder()
    with pytest.raises(ImageFormatError):
        coder.encode(np.zeros((8, 8), dtype=np.uint8), 4.0)
    with pytest.raises(ImageFormatError):
        coder.encode(np.zeros((8, 8, 3), dtype=np.float32), 4.0)
    with pytest.raises(ValueError):
        coder.encode(np.zeros((8, 8, 3), dtype=np.uint8), 0.0)
    with pytest.raises(ValueError):
        BlockTransformCoder(np.ones((64, 64)))
    with pytest.raises(TypeError):
        coder.decode("not bytes")


def test_too_small_step_is_refused():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[::2, ::2] = 255
    with pytest.raises(ValueError, match="too small"):
        DCTCoder().encode(image, 1e-3)


def test_truncated_to_one_coefficient_leaves_the_block_means():
    rng = np.random.default_rng(1)
    gray = rng.integers(40, 216, (16, 24)).astype(np.uint8)
    image = np.repeat(gray[:, :, None], 3, axis=2)  # gray: Cb = Cr = 128, Y = the gray value
    result = DCTCoder().truncated(image, 1)
    means = gray.reshape(2, 8, 3, 8).mean(axis=(1, 3))
    expected = np.repeat(np.repeat(means, 8, axis=0), 8, axis=1)
    assert np.abs(result.astype(float) - expected[:, :, None]).max() <= 1.0


def test_truncated_with_every_coefficient_is_analysis_then_synthesis(sample):
    coder = DCTCoder()
    image = sample[:40, :56]
    full = coder.synthesise(coder.analyse(image), image.shape[:2])
    np.testing.assert_array_equal(coder.truncated(image, 64), full)
    assert np.all(coder.truncated(image, 0) == 128)
    for keep in (-1, 65, 2.0):
        with pytest.raises(ValueError):
            coder.truncated(image, keep)


def test_training_klt_coder_learns_the_block_size_it_is_asked_for():
    coder, source = training_klt_coder(n_photos=2, n_blocks=400, block_size=4)
    assert coder.block_size == 4 and coder.basis.shape == (16, 16)
    assert isinstance(source, str) and source
