"""nicbook.plot.jpeg: pictures of JPEG's intermediate stages."""

from __future__ import annotations

import numpy as np
import pytest

from nicbook.jpeg import event_bits, huffman_specs, quantize_image, scan_coefficients, scan_symbols
from nicbook.plot import jpeg as views


@pytest.fixture(scope="module")
def crop(sample) -> np.ndarray:
    return sample[100:260, 150:350]


def test_keeping_all_coefficients_gives_the_image_back_and_one_blurs_it(crop):
    np.testing.assert_array_equal(views.keep_coefficients(crop, 64), crop)  # lossless up to rounding
    assert np.abs(views.keep_coefficients(crop, 1).astype(int) - crop).mean() > 3


def test_the_bits_map_spreads_the_file_s_bits_over_the_pixels(crop):
    bits = views.bits_map(crop, 50)
    symbols = scan_symbols(*scan_coefficients(quantize_image(crop, 50)))
    assert bits.shape == crop.shape[:2]
    assert bits.sum() == pytest.approx(event_bits(symbols, huffman_specs(symbols, 3)).sum(), rel=0.05)


def test_pipeline_frames_show_every_stage_at_the_same_size(crop):
    frames, titles = views.pipeline_frames(crop[:48, :40], quality=50, zoom=2)
    assert len(frames) == len(titles) == 7
    assert all(frame.shape == (96, 80, 3) and frame.dtype == np.uint8 for frame in frames)
