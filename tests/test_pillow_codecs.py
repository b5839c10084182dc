"""nicbook.pillow_codecs: Pillow's codecs as reference points, measured from real files."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from nicbook.metrics import psnr
from nicbook.pillow_codecs import CODECS, available_codecs, png_bytes, zlib_bytes


@pytest.fixture(scope="module")
def crop(sample) -> np.ndarray:
    return np.ascontiguousarray(sample[100:196, 150:278])


def test_jpeg_and_webp_are_available_and_every_codec_has_a_sweep():
    assert {"JPEG", "WebP"} <= set(available_codecs())
    assert all(len(codec.settings) >= 4 for codec in CODECS.values())


@pytest.mark.parametrize("name", ["JPEG", "WebP"])
def test_higher_settings_buy_quality_with_bytes(crop, name):
    codec = CODECS[name]
    files = [codec.encode(crop, setting) for setting in (codec.settings[1], codec.settings[-2])]
    low, high = (codec.decode(data) for data in files)
    assert low.shape == high.shape == crop.shape and low.dtype == np.uint8
    assert len(files[0]) < len(files[1]) and psnr(crop, low) < psnr(crop, high)
    with Image.open(io.BytesIO(files[0])) as picture:
        assert picture.format == codec.pillow_format


def test_the_lossless_references_give_the_image_back(crop):
    with Image.open(io.BytesIO(png_bytes(crop))) as picture:
        assert np.array_equal(np.asarray(picture), crop)
    assert zlib.decompress(zlib_bytes(crop)) == crop.tobytes()
