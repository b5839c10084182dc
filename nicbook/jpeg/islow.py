"""libjpeg's accurate integer DCT (``JDCT_ISLOW``, jfdctint.c / jidctint.c), vectorised.

The Loeffler–Ligtenberg–Moschytz factorisation with 13-bit fixed-point constants. It
approximates the orthonormal DCT of :mod:`nicbook.transforms` to within rounding; using it
makes nicbook's coefficients, and therefore its files and decoded pixels, identical to
libjpeg's rather than merely close.
"""

from __future__ import annotations

import numpy as np

_CONST_BITS = 13
_PASS1_BITS = 2
_FIX = {  # round(x * 2**13)
    0.298631336: 2446, 0.390180644: 3196, 0.541196100: 4433, 0.765366865: 6270,
    0.899976223: 7373, 1.175875602: 9633, 1.501321110: 12299, 1.847759065: 15137,
    1.961570560: 16069, 2.053119869: 16819, 2.562915447: 20995, 3.072711026: 25172,
}  # fmt: skip


def _descale(x: np.ndarray, n: int) -> np.ndarray:
    return (x + (1 << (n - 1))) >> n


def _odd_part(a0, a1, a2, a3):
    """Shared rotation network of the odd coefficients; inputs are the four odd-indexed terms."""
    z1, z2, z3, z4 = a0 + a3, a1 + a2, a0 + a2, a1 + a3
    z5 = (z3 + z4) * _FIX[1.175875602]
    z1, z2 = z1 * -_FIX[0.899976223], z2 * -_FIX[2.562915447]
    z3, z4 = z3 * -_FIX[1.961570560] + z5, z4 * -_FIX[0.390180644] + z5
    return (
        a0 * _FIX[0.298631336] + z1 + z3,
        a1 * _FIX[2.053119869] + z2 + z4,
        a2 * _FIX[3.072711026] + z2 + z3,
        a3 * _FIX[1.501321110] + z1 + z4,
    )


def _forward_pass(d: np.ndarray, last: bool) -> np.ndarray:
    """One 1-D pass of ``jpeg_fdct_islow`` along the last axis."""
    tmp0, tmp7 = d[..., 0] + d[..., 7], d[..., 0] - d[..., 7]
    tmp1, tmp6 = d[..., 1] + d[..., 6], d[..., 1] - d[..., 6]
    tmp2, tmp5 = d[..., 2] + d[..., 5], d[..., 2] - d[..., 5]
    tmp3, tmp4 = d[..., 3] + d[..., 4], d[..., 3] - d[..., 4]
    tmp10, tmp13, tmp11, tmp12 = tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2
    shift = _CONST_BITS + _PASS1_BITS if last else _CONST_BITS - _PASS1_BITS
    out = np.empty_like(d)
    if last:
        out[..., 0], out[..., 4] = _descale(tmp10 + tmp11, _PASS1_BITS), _descale(tmp10 - tmp11, _PASS1_BITS)
    else:
        out[..., 0], out[..., 4] = (tmp10 + tmp11) << _PASS1_BITS, (tmp10 - tmp11) << _PASS1_BITS
    z1 = (tmp12 + tmp13) * _FIX[0.541196100]
    out[..., 2] = _descale(z1 + tmp13 * _FIX[0.765366865], shift)
    out[..., 6] = _descale(z1 - tmp12 * _FIX[1.847759065], shift)
    odd7, odd5, odd3, odd1 = _odd_part(tmp4, tmp5, tmp6, tmp7)
    out[..., 7], out[..., 5] = _descale(odd7, shift), _descale(odd5, shift)
    out[..., 3], out[..., 1] = _descale(odd3, shift), _descale(odd1, shift)
    return out


def fdct_islow(samples: np.ndarray) -> np.ndarray:
    """Forward DCT of level-shifted ``(..., 8, 8)`` integer samples, scaled by 8 as libjpeg's is.

    Rows first, then columns; divide by ``8 * step`` when quantizing.
    """
    rows = _forward_pass(np.asarray(samples, dtype=np.int64), last=False)
    return _forward_pass(rows.swapaxes(-1, -2), last=True).swapaxes(-1, -2)


def _inverse_pass(c: np.ndarray, shift: int) -> np.ndarray:
    """One 1-D pass of ``jpeg_idct_islow`` along the last axis."""
    z1 = (c[..., 2] + c[..., 6]) * _FIX[0.541196100]
    tmp2 = z1 - c[..., 6] * _FIX[1.847759065]
    tmp3 = z1 + c[..., 2] * _FIX[0.765366865]
    tmp0 = (c[..., 0] + c[..., 4]) << _CONST_BITS
    tmp1 = (c[..., 0] - c[..., 4]) << _CONST_BITS
    tmp10, tmp13, tmp11, tmp12 = tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2
    odd0, odd1, odd2, odd3 = _odd_part(c[..., 7], c[..., 5], c[..., 3], c[..., 1])
    out = np.empty_like(c)
    out[..., 0], out[..., 7] = _descale(tmp10 + odd3, shift), _descale(tmp10 - odd3, shift)
    out[..., 1], out[..., 6] = _descale(tmp11 + odd2, shift), _descale(tmp11 - odd2, shift)
    out[..., 2], out[..., 5] = _descale(tmp12 + odd1, shift), _descale(tmp12 - odd1, shift)
    out[..., 3], out[..., 4] = _descale(tmp13 + odd0, shift), _descale(tmp13 - odd0, shift)
    return out


def idct_islow(coefficients: np.ndarray) -> np.ndarray:
    """Inverse DCT of dequantized ``(..., 8, 8)`` coefficients to samples 0..255 (uint8), as libjpeg.

    Columns first, then rows; the result is level-shifted back and clamped.
    """
    columns = _inverse_pass(np.asarray(coefficients, dtype=np.int64).swapaxes(-1, -2), _CONST_BITS - _PASS1_BITS)
    samples = _inverse_pass(columns.swapaxes(-1, -2), _CONST_BITS + _PASS1_BITS + 3)
    return np.clip(samples + 128, 0, 255).astype(np.uint8)
