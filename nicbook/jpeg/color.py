"""Colour conversion and chroma resampling, bit-exact with libjpeg's integer arithmetic.

JFIF defines YCbCr from RGB with the BT.601 weights and full 0..255 range. libjpeg evaluates
them in 16-bit fixed point; copying its constants and rounding makes our planes (and hence our
file sizes) match libjpeg's encoder, and our decoded pixels match its decoder.
"""

from __future__ import annotations

import numpy as np

_SCALE_BITS = 16
_ONE_HALF = 1 << (_SCALE_BITS - 1)


def _fix(x: float) -> int:
    return int(x * (1 << _SCALE_BITS) + 0.5)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB to ``(3, H, W)`` int64 Y, Cb, Cr planes (libjpeg ``rgb_ycc_convert``)."""
    r, g, b = (rgb[..., c].astype(np.int64) for c in range(3))
    offset = (128 << _SCALE_BITS) + _ONE_HALF - 1
    y = (_fix(0.299) * r + _fix(0.587) * g + _fix(0.114) * b + _ONE_HALF) >> _SCALE_BITS
    cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + offset) >> _SCALE_BITS
    cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + offset) >> _SCALE_BITS
    return np.stack([y, cb, cr])


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Integer Y, Cb, Cr planes (0..255) to ``(H, W, 3)`` uint8 RGB (libjpeg ``ycc_rgb_convert``)."""
    y, cb, cr = (np.asarray(p, dtype=np.int64) for p in (y, cb, cr))
    cb, cr = cb - 128, cr - 128
    red = y + ((_fix(1.402) * cr + _ONE_HALF) >> _SCALE_BITS)
    green = y + ((-_fix(0.34414) * cb - _fix(0.71414) * cr + _ONE_HALF) >> _SCALE_BITS)
    blue = y + ((_fix(1.772) * cb + _ONE_HALF) >> _SCALE_BITS)
    return np.clip(np.stack([red, green, blue], axis=-1), 0, 255).astype(np.uint8)


def pad_edges(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Extend a plane to ``(height, width)`` by replicating its last row and column."""
    return np.pad(plane, ((0, height - plane.shape[0]), (0, width - plane.shape[1])), mode="edge")


def downsample_h2v2(plane: np.ndarray) -> np.ndarray:
    """2 × 2 box average with libjpeg's alternating rounding bias 1, 2, 1, 2, ... (even-sized input)."""
    plane = plane.astype(np.int64)
    sums = plane[0::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 0::2] + plane[1::2, 1::2]
    bias = 1 + (np.arange(sums.shape[1]) & 1)
    return (sums + bias) >> 2


def _neighbours(plane: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's previous and next neighbour along ``axis``, the edge samples replicated."""
    first, last = np.take(plane, [0], axis=axis), np.take(plane, [-1], axis=axis)
    inner = plane.shape[axis] - 1
    previous = np.concatenate([first, np.take(plane, range(inner), axis=axis)], axis=axis)
    following = np.concatenate([np.take(plane, range(1, inner + 1), axis=axis), last], axis=axis)
    return previous, following


def upsample_fancy_h2v1(plane: np.ndarray) -> np.ndarray:
    """Horizontal 2× triangle-filter upsampling (libjpeg ``h2v1_fancy_upsample``)."""
    plane = plane.astype(np.int64)
    left, right = _neighbours(plane, axis=1)
    out = np.empty((plane.shape[0], 2 * plane.shape[1]), dtype=np.int64)
    out[:, 0::2] = (3 * plane + left + 1) >> 2
    out[:, 1::2] = (3 * plane + right + 2) >> 2
    return out


def upsample_fancy_h2v2(plane: np.ndarray) -> np.ndarray:
    """2 × 2 triangle-filter upsampling (libjpeg ``h2v2_fancy_upsample``): weights 9/16, 3/16, 3/16, 1/16."""
    plane = plane.astype(np.int64)
    above, below = _neighbours(plane, axis=0)
    columns = np.empty((2 * plane.shape[0], plane.shape[1]), dtype=np.int64)
    columns[0::2] = 3 * plane + above
    columns[1::2] = 3 * plane + below
    left, right = _neighbours(columns, axis=1)
    out = np.empty((columns.shape[0], 2 * columns.shape[1]), dtype=np.int64)
    out[:, 0::2] = (3 * columns + left + 8) >> 4
    out[:, 1::2] = (3 * columns + right + 7) >> 4
    return out


def upsample(plane: np.ndarray, factor_y: int, factor_x: int) -> np.ndarray:
    """Upsample a decoded chroma plane by integer factors.

    2× horizontal (4:2:2) and 2 × 2 (4:2:0) use libjpeg's triangle ("fancy") filters, which
    is what makes decoded colours agree with libjpeg's; other ratios replicate samples.
    """
    if (factor_y, factor_x) == (1, 1):
        return plane
    if plane.shape[1] > 2 and factor_x == 2 and factor_y in (1, 2):
        return upsample_fancy_h2v2(plane) if factor_y == 2 else upsample_fancy_h2v1(plane)
    return np.repeat(np.repeat(plane, factor_y, axis=0), factor_x, axis=1)
