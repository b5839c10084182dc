"""nicbook.transforms: the block DCT, zig-zag orders and the KLT."""

from __future__ import annotations

import numpy as np
import pytest

from nicbook import transforms
from nicbook.errors import ImageFormatError
from nicbook.transforms import (
    basis_images,
    blockify,
    dct2,
    dct_basis,
    dct_matrix,
    energy_compaction,
    idct2,
    learn_klt_basis,
    unblockify,
    zigzag_indices,
    zigzag_order,
)

# ITU-T T.81 Figure A.6, as flat row-major indices of an 8 x 8 block.
JPEG_ZIGZAG_8 = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]  # fmt: skip
ZIGZAG_4 = [(0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2),
            (2, 1), (3, 0), (3, 1), (2, 2), (1, 3), (2, 3), (3, 2), (3, 3)]  # fmt: skip


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16])
def test_dct_matrix_is_orthonormal(n):
    matrix = dct_matrix(n)
    assert matrix.shape == (n, n) and matrix.dtype == np.float64
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(n), atol=1e-12)


def test_dct_matrix_matches_definition():
    n = 8
    k, i = 3, 5
    expected = np.sqrt(2 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    assert dct_matrix(n)[k, i] == pytest.approx(expected)
    assert dct_matrix(n)[0, 0] == pytest.approx(1 / np.sqrt(n))


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_dct2_round_trip_and_parseval(n):
    rng = np.random.default_rng(n)
    blocks = rng.normal(size=(3, 5, n, n))
    coefficients = dct2(blocks)
    np.testing.assert_allclose(idct2(coefficients), blocks, atol=1e-10)
    np.testing.assert_allclose(np.sum(coefficients**2), np.sum(blocks**2))


def test_dct2_of_constant_block_is_dc_only():
    coefficients = dct2(np.full((8, 8), 10.0))
    assert coefficients[0, 0] == pytest.approx(80.0)
    coefficients[0, 0] = 0
    np.testing.assert_allclose(coefficients, 0, atol=1e-12)


def test_zigzag_orders_match_known_scans():
    np.testing.assert_array_equal(zigzag_indices(8), JPEG_ZIGZAG_8)
    assert [tuple(p) for p in zigzag_order(4)] == ZIGZAG_4
    for n in (1, 3, 5, 8):
        assert sorted(zigzag_indices(n).tolist()) == list(range(n * n))


@pytest.mark.parametrize("shape", [(1, 1), (17, 33), (8, 8), (9, 15)])
def test_blockify_round_trip_odd_sizes(shape):
    channel = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    blocks = blockify(channel, 8)
    assert blocks.shape == (-(-shape[0] // 8), -(-shape[1] // 8), 8, 8)
    assert blocks.dtype == np.uint8
    np.testing.assert_array_equal(unblockify(blocks, shape), channel)
    # Padding replicates the last row and column.
    full = unblockify(blocks, (blocks.shape[0] * 8, blocks.shape[1] * 8))
    np.testing.assert_array_equal(full[-1, -1], channel[-1, -1])
    np.testing.assert_array_equal(full[: shape[0], -1], channel[:, -1])


def test_blockify_rejects_bad_input():
    with pytest.raises(ImageFormatError):
        blockify(np.zeros((4, 4, 3)))
    with pytest.raises(ImageFormatError):
        blockify(np.zeros((4, 4), dtype=bool))
    with pytest.raises(ValueError):
        blockify(np.zeros((4, 4)), n=0)
    with pytest.raises(ValueError):
        unblockify(np.zeros((1, 1, 8, 8)), (9, 8))
    with pytest.raises(ValueError):
        dct2(np.zeros((8, 4)))


def test_dct_basis_matches_dct2_in_zigzag_order():
    rng = np.random.default_rng(0)
    block = rng.normal(size=(8, 8))
    basis = dct_basis(8)
    np.testing.assert_allclose(basis @ basis.T, np.eye(64), atol=1e-12)
    np.testing.assert_allclose(basis @ block.ravel(), dct2(block).ravel()[zigzag_indices(8)], atol=1e-12)


def test_klt_basis_is_sorted_orthonormal_and_deterministic():
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(16, 16))
    blocks = rng.normal(size=(2000, 16)) * np.linspace(3, 0.1, 16) @ mixing
    basis = learn_klt_basis(blocks)
    np.testing.assert_allclose(basis @ basis.T, np.eye(16), atol=1e-10)
    variances = np.var((blocks - blocks.mean(0)) @ basis.T, axis=0)
    assert np.all(np.diff(variances) <= 1e-9)
    peaks = basis[np.arange(16), np.argmax(np.abs(basis), axis=1)]
    assert np.all(peaks > 0)
    np.testing.assert_array_equal(basis, learn_klt_basis(blocks.reshape(-1, 4, 4)))


def test_klt_compacts_at_least_as_well_as_dct():
    rng = np.random.default_rng(2)
    # A smooth first-order Markov field: the DCT is near optimal, the KLT is optimal.
    noise = rng.normal(size=(4000, 8, 8))
    field = np.cumsum(np.cumsum(noise, axis=1) * 0.3, axis=2)
    vectors = field.reshape(len(field), -1)
    vectors = vectors - vectors.mean(0)
    klt = energy_compaction(vectors @ learn_klt_basis(vectors).T)
    dct = energy_compaction(vectors @ dct_basis(8).T)
    assert klt[-1] == pytest.approx(1.0) and dct[-1] == pytest.approx(1.0)
    assert np.all(klt >= dct - 1e-9)
    assert dct[5] > 0.8


def test_energy_compaction_and_basis_images():
    np.testing.assert_allclose(energy_compaction(np.array([[3.0, 4.0], [0.0, 0.0]])), [9 / 25, 1.0])
    images = basis_images(dct_basis(4), 4)
    assert images.shape == (16, 4, 4)
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_allclose(images[0], images[0][0, 0])
    with pytest.raises(ValueError):
        basis_images(dct_basis(4), 8)


def test_basis_mosaic_tiles_the_basis_images_in_reading_order():
    basis = transforms.dct_basis(4)
    mosaic = transforms.basis_mosaic(basis, gap=2)
    assert mosaic.shape == (4 * 6, 4 * 6)
    images = transforms.basis_images(basis, 4)
    for k in range(16):
        row, col = divmod(k, 4)
        np.testing.assert_array_equal(mosaic[6 * row : 6 * row + 4, 6 * col : 6 * col + 4], images[k])
        assert np.all(mosaic[6 * row + 4 : 6 * row + 6, 6 * col : 6 * col + 6] == 1.0)
        assert np.all(mosaic[6 * row : 6 * row + 6, 6 * col + 4 : 6 * col + 6] == 1.0)
    assert transforms.basis_mosaic(transforms.dct_basis(8), gap=0).shape == (64, 64)
    with pytest.raises(ValueError):
        transforms.basis_mosaic(np.eye(12))
    with pytest.raises(ValueError):
        transforms.basis_mosaic(basis, gap=-1)
