"""nicbook.blockcoder: the block transform coder with a DCT or KLT basis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nicbook import blockcoder
from nicbook.blockcoder import BlockTransformCoder, DCTCoder, KLTCoder, read_header, training_klt_coder
from nicbook.data import sample_image, stand_in_training_image
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
    assert read_header(now).version == blockcoder.VERSION == 2
    assert np.array_equal(DCTCoder().decode(data), DCTCoder().decode(now))


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
