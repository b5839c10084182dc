"""The exercise checks accept correct answers and name the problem in wrong ones."""

from __future__ import annotations

import numpy as np
import torch

from nicbook import exercises, metrics
from nicbook.entropy import HuffmanCode


def test_psnr_check():
    assert exercises.check_psnr(metrics.psnr)
    wrapped = exercises.check_psnr(lambda a, b: 10 * np.log10(255**2 / np.mean((a - b) ** 2)))
    assert not wrapped and "expected" in wrapped.message
    raising = exercises.check_psnr(lambda a, b: 1 / 0)
    assert not raising and "ZeroDivisionError" in raising.message


def test_information_content_check():
    assert exercises.check_information_content(lambda p: -np.log2(p))
    natural = exercises.check_information_content(lambda p: -np.log(p))
    assert not natural and "base 2" in natural.message


def test_cross_entropy_check():
    def reference(p, q):
        p, q = np.asarray(p), np.asarray(q)
        mask = p > 0
        return float(-np.sum(p[mask] * np.log2(q[mask])))

    assert exercises.check_cross_entropy(reference)
    assert not exercises.check_cross_entropy(lambda p, q: reference(q, p))


def test_zigzag_check_names_the_first_wrong_position():
    from nicbook.transforms import zigzag_order

    assert exercises.check_zigzag(lambda n: zigzag_order(n).tolist())

    def row_major_start(n):
        order = zigzag_order(n).tolist()
        order[2], order[3] = order[3], order[2]
        return order

    result = exercises.check_zigzag(row_major_start)
    assert not result
    assert result.message == "4×4: position 2 should be (1, 0), got (2, 0)"


def test_quantizer_check():
    from nicbook.quantizers import quantize

    assert exercises.check_quantizer(quantize)
    plain = exercises.check_quantizer(lambda x, step, rounding: np.round(x / step).astype(int))
    assert not plain and "x = -0.5 should map to -1, got 0" in plain.message
    truncating = exercises.check_quantizer(lambda x, step, rounding: np.trunc(x / step + np.sign(x) * 0.5).astype(int))
    assert not truncating and "rounding 0.333" in truncating.message


def test_klt_check():
    from nicbook.transforms import learn_klt_basis

    assert exercises.check_klt_basis(learn_klt_basis)
    assert exercises.check_klt_basis(lambda blocks: -learn_klt_basis(blocks))  # signs are free
    reversed_rows = exercises.check_klt_basis(lambda blocks: learn_klt_basis(blocks)[::-1])
    assert not reversed_rows and "sorted by decreasing variance" in reversed_rows.message
    assert "orthonormal" in exercises.check_klt_basis(lambda blocks: 2 * learn_klt_basis(blocks)).message


def test_huffman_check():
    assert exercises.check_huffman_lengths(lambda f: HuffmanCode.from_frequencies(f).lengths)
    flat = exercises.check_huffman_lengths(lambda f: np.full(len(f), int(np.ceil(np.log2(len(f))))))
    assert not flat and "Huffman reaches" in flat.message
    too_short = exercises.check_huffman_lengths(lambda f: np.ones(len(f), int))
    assert not too_short and "Kraft" in too_short.message


def test_uniform_noise_check():
    assert exercises.check_uniform_noise(lambda y: y + torch.rand_like(y) - 0.5)
    assert "±0.5" in exercises.check_uniform_noise(lambda y: y + torch.rand_like(y)).message
    assert not exercises.check_uniform_noise(lambda y: torch.round(y))
    detached = exercises.check_uniform_noise(lambda y: (y + torch.rand_like(y) - 0.5).detach())
    assert "detached" in detached.message


def test_rate_check():
    assert exercises.check_rate(lambda p, n: float(-torch.log2(p).sum() / n))
    nats = exercises.check_rate(lambda p, n: float(-torch.log(p).sum() / n))
    assert not nats and "nats" in nats.message


def test_operating_point_check_names_a_swapped_lagrangian():
    assert exercises.check_operating_point(lambda r, d, lmbda: int(np.argmin(r + lmbda * d)))
    swapped = exercises.check_operating_point(lambda r, d, lmbda: int(np.argmin(d + lmbda * r)))
    assert not swapped and "D + λ·R" in swapped.message
    assert not exercises.check_operating_point(lambda r, d, lmbda: 99)
    assert not exercises.check_operating_point(lambda r, d, lmbda: "first")


def test_result_renders_in_notebooks():
    result = exercises.check_information_content(lambda p: -np.log2(p))
    assert str(result).startswith("information content: passed")
    assert result._repr_markdown_().startswith("✅")
