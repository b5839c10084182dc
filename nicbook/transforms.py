"""Block transforms: the DCT of JPEG, zig-zag scans and the data-driven KLT.

An image channel is cut into ``n × n`` blocks (:func:`blockify`), each block is transformed
with the orthonormal 2-D DCT-II (:func:`dct2`), and the coefficients are read in zig-zag order
(:func:`zigzag_order`) so that low frequencies come first. The Karhunen–Loève transform
(:func:`learn_klt_basis`) is the basis that is optimal for a given set of blocks; comparing its
energy compaction (:func:`energy_compaction`) with the DCT's shows why a fixed DCT is almost as
good for natural images.

All transforms are orthonormal, so they preserve energy (Parseval) and are inverted by their
transpose.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nicbook.errors import ImageFormatError

__all__ = [
    "basis_images",
    "basis_mosaic",
    "blockify",
    "dct2",
    "dct_basis",
    "dct_matrix",
    "energy_compaction",
    "idct2",
    "learn_klt_basis",
    "unblockify",
    "zigzag_indices",
    "zigzag_order",
]


def _check_block_size(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"block size must be a positive integer, got {n!r}")
    return int(n)


@lru_cache(maxsize=32)
def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    matrix[0] /= np.sqrt(2.0)
    matrix.setflags(write=False)
    return matrix


def dct_matrix(n: int = 8) -> np.ndarray:
    """The orthonormal DCT-II matrix ``C`` (``n × n``, float64): ``C @ x`` transforms a length-``n`` signal.

    Row ``k`` is the cosine of frequency ``k``; ``C @ C.T`` is the identity.
    """
    return _dct_matrix(_check_block_size(n)).copy()


def _as_numeric(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ImageFormatError(f"{name} must hold integers or floats, got dtype {array.dtype}")
    return array


def blockify(channel: np.ndarray, n: int = 8) -> np.ndarray:
    """Cut a 2-D channel into ``n × n`` blocks, shape ``(rows, cols, n, n)``.

    The channel is first padded to multiples of ``n`` by replicating its last row and column
    (as JPEG encoders do), so that partial blocks at the border contain no artificial edge.
    The dtype is kept.
    """
    n = _check_block_size(n)
    channel = _as_numeric(channel, "channel")
    if channel.ndim != 2 or channel.size == 0:
        raise ImageFormatError(f"channel must be a non-empty 2-D array, got shape {channel.shape}")
    height, width = channel.shape
    rows, cols = -(-height // n), -(-width // n)
    padded = np.pad(channel, ((0, rows * n - height), (0, cols * n - width)), mode="edge")
    return np.ascontiguousarray(padded.reshape(rows, n, cols, n).swapaxes(1, 2))


def unblockify(blocks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Reassemble ``(rows, cols, n, n)`` blocks into a channel and crop it to ``shape = (H, W)``."""
    blocks = _as_numeric(blocks, "blocks")
    if blocks.ndim != 4 or blocks.shape[2] != blocks.shape[3]:
        raise ValueError(f"blocks must have shape (rows, cols, n, n), got {blocks.shape}")
    if len(shape) != 2:
        raise ValueError(f"shape must be (height, width), got {shape!r}")
    rows, cols, n, _ = blocks.shape
    height, width = (int(s) for s in shape)
    if not (0 < height <= rows * n and 0 < width <= cols * n):
        raise ValueError(f"shape {shape} does not fit in {rows}×{cols} blocks of size {n}")
    channel = blocks.swapaxes(1, 2).reshape(rows * n, cols * n)
    return np.ascontiguousarray(channel[:height, :width])


def _square_trailing(blocks: np.ndarray) -> np.ndarray:
    blocks = _as_numeric(blocks, "blocks")
    if blocks.ndim < 2 or blocks.shape[-1] != blocks.shape[-2] or blocks.shape[-1] == 0:
        raise ValueError(f"the last two axes must form square blocks, got shape {blocks.shape}")
    return blocks


def dct2(blocks: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D DCT-II of the trailing ``n × n`` axes (any leading shape), in float64."""
    blocks = _square_trailing(blocks)
    matrix = _dct_matrix(blocks.shape[-1])
    return matrix @ blocks.astype(np.float64, copy=False) @ matrix.T


def idct2(coefficients: np.ndarray) -> np.ndarray:
    """Inverse of :func:`dct2` (the 2-D DCT-III), in float64."""
    coefficients = _square_trailing(coefficients)
    matrix = _dct_matrix(coefficients.shape[-1])
    return matrix.T @ coefficients.astype(np.float64, copy=False) @ matrix


@lru_cache(maxsize=32)
def _zigzag_order(n: int) -> np.ndarray:
    rows, cols = np.indices((n, n)).reshape(2, -1)
    diagonal = rows + cols
    # Odd anti-diagonals run down (row increasing), even ones run up (row decreasing).
    along = np.where(diagonal % 2 == 1, rows, -rows)
    order = np.lexsort((along, diagonal))
    result = np.stack([rows[order], cols[order]], axis=1)
    result.setflags(write=False)
    return result


def zigzag_order(n: int = 8) -> np.ndarray:
    """``(n*n, 2)`` array of ``(row, col)`` positions in JPEG's zig-zag scan order."""
    return _zigzag_order(_check_block_size(n)).copy()


def zigzag_indices(n: int = 8) -> np.ndarray:
    """Flat (row-major) indices of the zig-zag scan: ``block.reshape(-1)[zigzag_indices(n)]``."""
    order = _zigzag_order(_check_block_size(n))
    return order[:, 0] * n + order[:, 1]


def dct_basis(n: int = 8) -> np.ndarray:
    """The 2-D DCT basis as rows of an ``(n*n, n*n)`` orthonormal matrix, in zig-zag order.

    ``dct_basis(n) @ block.reshape(-1)`` gives the zig-zag ordered coefficients of
    ``dct2(block)``; the same layout as :func:`learn_klt_basis`, so the two are interchangeable.
    """
    n = _check_block_size(n)
    matrix = _dct_matrix(n)
    basis = np.einsum("ui,vj->uvij", matrix, matrix).reshape(n * n, n * n)
    return basis[zigzag_indices(n)]


def _as_vectors(blocks: np.ndarray) -> np.ndarray:
    blocks = _as_numeric(blocks, "blocks")
    if blocks.ndim == 3:
        if blocks.shape[1] != blocks.shape[2]:
            raise ValueError(f"blocks must be (N, n, n) or (N, n*n), got shape {blocks.shape}")
        blocks = blocks.reshape(len(blocks), -1)
    if blocks.ndim != 2 or blocks.shape[1] == 0:
        raise ValueError(f"blocks must be (N, n, n) or (N, n*n), got shape {blocks.shape}")
    return blocks.astype(np.float64, copy=False)


def learn_klt_basis(blocks: np.ndarray) -> np.ndarray:
    """The Karhunen–Loève basis (PCA) of a set of blocks, as rows of a ``(k, k)`` orthonormal matrix.

    ``blocks`` is ``(N, k)`` or ``(N, n, n)``. Rows are eigenvectors of the covariance of the
    mean-removed blocks, sorted by decreasing variance. Eigenvectors are defined only up to
    sign, so each row is flipped to make its largest-magnitude entry positive (the first such
    entry on ties): the result is deterministic and the DC-like first vector is positive.
    """
    vectors = _as_vectors(blocks)
    if len(vectors) < 2:
        raise ValueError(f"need at least 2 blocks to estimate a covariance, got {len(vectors)}")
    centred = vectors - vectors.mean(axis=0)
    covariance = centred.T @ centred / (len(vectors) - 1)
    variances, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(-variances, kind="stable")
    basis = eigenvectors[:, order].T
    peak = np.argmax(np.round(np.abs(basis), 9), axis=1)
    signs = np.sign(basis[np.arange(len(basis)), peak])
    return basis * np.where(signs == 0, 1.0, signs)[:, None]


def energy_compaction(coefficients: np.ndarray) -> np.ndarray:
    """Cumulative fraction of the total energy held by the first ``1, 2, ..., k`` coefficients.

    ``coefficients`` is ``(N, k)`` (one transformed block per row, coefficients in the order of
    the basis). A transform that compacts energy well reaches 1 after few coefficients.
    """
    coefficients = _as_vectors(coefficients)
    energy = np.sum(coefficients**2, axis=0)
    total = energy.sum()
    if total == 0:
        return np.ones(len(energy))
    return np.cumsum(energy) / total


def basis_images(basis: np.ndarray, n: int) -> np.ndarray:
    """Reshape basis rows into ``(k, n, n)`` images scaled to ``[0, 1]`` for display.

    Each image is scaled by the largest magnitude over the whole basis, with 0 mapped to mid
    grey, so that positive parts are light, negative parts dark and images stay comparable.
    """
    n = _check_block_size(n)
    basis = np.asarray(basis, dtype=np.float64)
    if basis.ndim != 2 or basis.shape[1] != n * n:
        raise ValueError(f"basis must be (k, {n * n}) for n = {n}, got shape {basis.shape}")
    peak = np.abs(basis).max() or 1.0
    return (0.5 + 0.5 * basis / peak).reshape(-1, n, n)


def basis_mosaic(basis: np.ndarray, gap: int = 1) -> np.ndarray:
    """The basis images of a square basis tiled in reading order, separated by white lines.

    ``basis`` is ``(n², n²)`` (rows = basis vectors, as :func:`dct_basis` or
    :func:`learn_klt_basis` give); the result is a 2-D float array in ``[0, 1]`` of side
    ``n · (n + gap)``: image ``k`` (scaled as in :func:`basis_images`) is tile ``divmod(k, n)``,
    followed by ``gap`` white (1.0) rows and columns.
    """
    basis = np.asarray(basis, dtype=np.float64)
    n = int(round(np.sqrt(basis.shape[-1]))) if basis.ndim == 2 else 0
    if basis.ndim != 2 or n < 1 or basis.shape != (n * n, n * n):
        raise ValueError(f"basis must be (n², n²), got shape {basis.shape}")
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < 0:
        raise ValueError(f"gap must be a non-negative integer, got {gap!r}")
    tiles = np.pad(basis_images(basis, n), ((0, 0), (0, gap), (0, gap)), constant_values=1.0)
    side = n + gap
    return tiles.reshape(n, n, side, side).swapaxes(1, 2).reshape(n * side, n * side)
