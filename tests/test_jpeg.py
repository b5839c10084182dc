"""nicbook.jpeg: a baseline JPEG codec, byte for byte and pixel for pixel what libjpeg does."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from nicbook.data import sample_image
from nicbook.errors import BitstreamError, ImageFormatError, UnsupportedFormatError
from nicbook.jpeg import (
    CHROMA_QUANTIZATION,
    LUMA_QUANTIZATION,
    decode,
    decode_file,
    encode,
    encode_file,
    magnitude_category,
    optimal_huffman_spec,
    quantize_image,
    scaled_quantization_table,
)
from nicbook.jpeg.islow import fdct_islow, idct_islow
from nicbook.jpeg.tables import AC_CHROMA, AC_LUMA, DC_CHROMA, DC_LUMA
from nicbook.transforms import dct2, idct2

PILLOW_SUBSAMPLING = {"444": 0, "422": 1, "420": 2}


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return sample_image()


@pytest.fixture(scope="module")
def crop(image) -> np.ndarray:
    return image[100:260, 150:350]


def pillow_encode(image: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def pillow_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB"))


def segments(data: bytes, marker: int) -> list[bytes]:
    """Payloads of every segment with ``marker`` before the first scan."""
    found, offset = [], 2
    while data[offset + 1] != 0xDA:
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        if data[offset + 1] == marker:
            found.append(data[offset + 4 : offset + 2 + length])
        offset += 2 + length
    return found


def test_quality_scaling_matches_libjpeg():
    np.testing.assert_array_equal(scaled_quantization_table(LUMA_QUANTIZATION, 50), LUMA_QUANTIZATION)
    assert np.all(scaled_quantization_table(CHROMA_QUANTIZATION, 100) == 1)
    assert scaled_quantization_table(LUMA_QUANTIZATION, 1).max() == 255  # baseline clamp
    assert scaled_quantization_table(LUMA_QUANTIZATION, 10)[0, 0] == (16 * 500 + 50) // 100
    assert scaled_quantization_table(LUMA_QUANTIZATION, 90)[0, 0] == 3
    for bad in (0, 101, 50.0, True):
        with pytest.raises(ValueError):
            scaled_quantization_table(LUMA_QUANTIZATION, bad)


@pytest.mark.parametrize("quality", [5, 50, 75, 97])
def test_tables_are_those_libjpeg_writes(crop, quality):
    ours, pillows = encode(crop, quality), pillow_encode(crop, quality=quality)
    assert segments(ours, 0xDB) == segments(pillows, 0xDB)
    assert segments(ours, 0xC4) == segments(pillows, 0xC4)
    assert segments(ours, 0xC0) == segments(pillows, 0xC0)


def test_standard_huffman_tables_have_all_symbols():
    assert len(DC_LUMA.values) == len(DC_CHROMA.values) == 12
    assert len(AC_LUMA.values) == len(AC_CHROMA.values) == 162


def test_integer_dct_is_close_to_the_orthonormal_dct():
    rng = np.random.default_rng(3)
    samples = rng.integers(-128, 128, size=(500, 8, 8))
    assert np.abs(fdct_islow(samples) / 8 - dct2(samples)).max() < 0.5
    coefficients = rng.integers(-300, 300, size=(500, 8, 8)) * (rng.random((500, 8, 8)) < 0.3)
    reference = np.clip(np.rint(idct2(coefficients) + 128), 0, 255)
    assert np.abs(idct_islow(coefficients).astype(int) - reference).max() <= 1


def test_magnitude_category():
    sizes, bits = magnitude_category(np.array([0, 1, -1, 2, -3, 7, -1023, 1024]))
    np.testing.assert_array_equal(sizes, [0, 1, 1, 2, 2, 3, 10, 11])
    np.testing.assert_array_equal(bits, [0, 1, 0, 2, 0, 7, 0, 1024])


@pytest.mark.parametrize("subsampling", ["420", "444"])
@pytest.mark.parametrize("quality", [10, 50, 90])
def test_pillow_opens_our_files(image, subsampling, quality):
    data = encode(image, quality, subsampling)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9" and data[6:11] == b"JFIF\x00"
    pillows_view = pillow_decode(data)
    assert pillows_view.shape == image.shape
    np.testing.assert_array_equal(decode(data), pillows_view)  # libjpeg's integer IDCT and upsampling
    # libjpeg's colour conversion, padding, integer DCT and tables: the very same bytes.
    assert data == pillow_encode(image, quality=quality, subsampling=PILLOW_SUBSAMPLING[subsampling])


@pytest.mark.parametrize("shape", [(1, 1), (33, 17), (17, 33), (9, 23), (16, 16)])
@pytest.mark.parametrize("subsampling", ["420", "444"])
def test_odd_sizes_round_trip_through_pillow(image, shape, subsampling):
    crop = image[200 : 200 + shape[0], 250 : 250 + shape[1]]
    data = encode(crop, 90, subsampling)
    pillows_view = pillow_decode(data)
    ours = decode(data)
    assert ours.shape == pillows_view.shape == crop.shape
    np.testing.assert_array_equal(ours, pillows_view)
    assert data == pillow_encode(crop, quality=90, subsampling=PILLOW_SUBSAMPLING[subsampling])


def test_grey_images(crop):
    grey = crop[..., 1]
    data = encode(grey, 80)
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.mode == "L"
        pillows_view = np.asarray(picture)
    ours = decode(data)
    assert ours.shape == (*grey.shape, 3)
    np.testing.assert_array_equal(ours[..., 0], ours[..., 2])
    np.testing.assert_array_equal(ours[..., 0], pillows_view)
    assert data == pillow_encode(grey, quality=80)
    pillow_grey = pillow_encode(grey, quality=60)
    np.testing.assert_array_equal(decode(pillow_grey), pillow_decode(pillow_grey))


@pytest.mark.parametrize("subsampling", ["444", "422", "420"])
@pytest.mark.parametrize("quality", [20, 95])
def test_we_decode_pillows_files(image, subsampling, quality):
    data = pillow_encode(image, quality=quality, subsampling=PILLOW_SUBSAMPLING[subsampling])
    np.testing.assert_array_equal(decode(data), pillow_decode(data))


@pytest.mark.parametrize("options", [{"restart_marker_blocks": 3}, {"restart_marker_rows": 1}, {"optimize": True}])
def test_we_decode_restart_markers_and_optimized_tables(crop, options):
    data = pillow_encode(crop, quality=70, **options)
    np.testing.assert_array_equal(decode(data), pillow_decode(data))


def test_decoder_skips_comments_and_app_segments(crop):
    data = pillow_encode(crop, quality=70, comment="hello", exif=b"Exif\x00\x00" + bytes(40), dpi=(300, 300))
    assert b"\xff\xfe" in data and b"\xff\xe1" in data
    np.testing.assert_array_equal(decode(data), pillow_decode(data))


def test_optimized_tables_are_smaller_and_valid(image):
    standard, optimized = encode(image, 75), encode(image, 75, optimize=True)
    assert len(optimized) < len(standard)
    np.testing.assert_array_equal(decode(optimized), decode(standard))
    np.testing.assert_array_equal(pillow_decode(optimized), pillow_decode(standard))
    reference = pillow_encode(image, quality=75, optimize=True)
    assert abs(len(optimized) / len(reference) - 1) < 0.01


def test_optimal_huffman_spec_respects_jpeg_limits():
    frequencies = np.zeros(256, dtype=np.int64)
    fibonacci = [1, 1]
    while len(fibonacci) < 30:
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    frequencies[:30] = fibonacci  # an unlimited Huffman code would need 29 bits
    spec = optimal_huffman_spec(frequencies)
    lengths = spec.code_lengths()
    assert lengths.max() <= 16 and set(spec.values) == set(range(30))
    longest = lengths == lengths.max()
    assert spec.codes()[longest].max() < (1 << int(lengths.max())) - 1  # all-ones code unused


def test_refuses_progressive_arithmetic_lossless_and_12_bit(crop):
    with pytest.raises(UnsupportedFormatError, match="progressive"):
        decode(pillow_encode(crop, quality=70, progressive=True))
    baseline = encode(crop, 70)
    sof = baseline.index(b"\xff\xc0")
    for marker, reason in ((0xC9, "arithmetic"), (0xC3, "lossless"), (0xC5, "hierarchical")):
        forged = baseline[: sof + 1] + bytes([marker]) + baseline[sof + 2 :]
        with pytest.raises(UnsupportedFormatError, match=reason):
            decode(forged)
    twelve_bit = baseline[: sof + 4] + bytes([12]) + baseline[sof + 5 :]
    with pytest.raises(UnsupportedFormatError, match="12-bit"):
        decode(twelve_bit)


def test_truncated_and_corrupt_files_raise_bitstream_error(crop):
    data = encode(crop, 75)
    for end in [0, 1, 2, 3, 10, 30, 100, 200, 400, len(data) // 2, len(data) - 3, len(data) - 1]:
        with pytest.raises(BitstreamError):
            decode(data[:end])
    with pytest.raises(BitstreamError):
        decode(b"not a jpeg at all")
    sof = data.index(b"\xff\xc0")
    huge = data[: sof + 5] + b"\xff\xff\xff\xff" + data[sof + 9 :]  # 65535 x 65535 pixels
    with pytest.raises(BitstreamError):
        decode(huge)
    # Random damage to the entropy-coded data either decodes to something or raises BitstreamError.
    scan = data.index(b"\xff\xda") + 14
    rng = np.random.default_rng(0)
    for _ in range(40):
        damaged = bytearray(data)
        positions = rng.integers(scan, len(data) - 2, size=3)
        damaged[positions[0] : positions[0] + 1] = bytes([rng.integers(0, 256)])
        damaged[positions[1] : positions[1] + 40] = bytes(40)
        try:
            result = decode(bytes(damaged))
        except BitstreamError:
            continue
        assert result.shape == crop.shape


def test_rejects_bad_images():
    with pytest.raises(ImageFormatError):
        encode(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(ImageFormatError):
        encode(np.zeros((8, 8, 4), dtype=np.uint8))
    with pytest.raises(ImageFormatError):
        encode(np.zeros((0, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        encode(np.zeros((8, 8, 3), dtype=np.uint8), subsampling="422")
    with pytest.raises(TypeError):
        decode("a string")


def test_quantize_image_exposes_the_lossy_stages(crop):
    quantized = quantize_image(crop, 50, "420")
    luma, cb, cr = quantized.blocks
    assert luma.shape == (20, 26, 64) and cb.shape == cr.shape == (10, 13, 64)  # whole 16 x 16 MCUs
    np.testing.assert_array_equal(quantized.tables[0], LUMA_QUANTIZATION)


def test_files(tmp_path, crop):
    size = encode_file(crop, tmp_path / "a.jpg", quality=60)
    assert size == (tmp_path / "a.jpg").stat().st_size
    assert (tmp_path / "a.jpg").read_bytes() == encode(crop, 60)
    np.testing.assert_array_equal(decode_file(tmp_path / "a.jpg"), decode(encode(crop, 60)))


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    quality=st.integers(1, 100),
    subsampling=st.sampled_from(["420", "444"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_same_bytes_and_pixels_as_libjpeg(height, width, quality, subsampling, seed):
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(0, 6, (height, width, 3)), axis=0), axis=1)
    picture = np.clip(128 + smooth, 0, 255).astype(np.uint8)
    data = encode(picture, quality, subsampling)
    assert data == pillow_encode(picture, quality=quality, subsampling=PILLOW_SUBSAMPLING[subsampling])
    np.testing.assert_array_equal(decode(data), pillow_decode(data))


def flat_grey_jpeg(side: int) -> bytes:
    """A valid baseline JPEG of ``side × side`` grey pixels, all 128, in about 12 bytes per 1,024
    pixels: Pillow's scan of a flat 32×32 image (every block a zero DC difference and an EOB) is
    repeated behind a frame header declaring the larger size. A "JPEG bomb" for large sides."""
    buffer = io.BytesIO()
    Image.new("L", (32, 32), 128).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    sof, sos = data.index(b"\xff\xc0"), data.index(b"\xff\xda")
    scan_start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    end = data.rindex(b"\xff\xd9")
    scan = data[scan_start:end]
    assert len(scan) == 12  # 16 blocks of 6 bits: whole bytes, so the scan can be repeated
    size = side.to_bytes(2, "big") * 2
    return data[: sof + 5] + size + data[sof + 9 : scan_start] + scan * (side * side // 1024) + data[end:]


@pytest.mark.slow
def test_a_large_image_decodes_in_a_few_bytes_per_pixel():
    data = flat_grey_jpeg(4096)  # 16.8 million pixels from 197 kB
    tracemalloc.start()
    try:
        decoded = decode(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded.shape == (4096, 4096, 3) and np.all(decoded == 128)
    assert peak <= 10 * 4096 * 4096  # the image itself takes 3 bytes per pixel


def test_images_over_the_pixel_limit_are_refused_before_decoding():
    with pytest.raises(UnsupportedFormatError, match="larger than the decoder's limit"):
        decode(flat_grey_jpeg(16384))  # 268 million pixels from 3 MB
