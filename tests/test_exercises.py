"""nicbook.exercises: the checks accept a learner's own correct answer and name the problem in the
typical wrong ones. The correct answers here are written the way a learner would write them, without
the package's own implementations, so a check that compares with a wrong reference fails."""

from __future__ import annotations

import heapq
import math

import numpy as np
import torch

from nicbook import exercises


def learner_psnr(a, b):
    error = a.astype(np.float64) - b.astype(np.float64)
    mse = np.mean(error**2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def test_psnr_check():
    assert exercises.check_psnr(learner_psnr)
    wrapped = exercises.check_psnr(lambda a, b: 10 * np.log10(255**2 / np.mean((a - b) ** 2)))  # uint8 wraps
    assert not wrapped and "expected" in wrapped.message
    unit_peak = exercises.check_psnr(lambda a, b: learner_psnr(a, b) - 20 * math.log10(255))
    assert not unit_peak and "dB, got" in unit_peak.message
    amplitude = exercises.check_psnr(lambda a, b: 2 * learner_psnr(a, b))  # 20·log10 of a power ratio
    assert not amplitude
    raising = exercises.check_psnr(lambda a, b: 1 / 0)
    assert not raising and "ZeroDivisionError" in raising.message


def test_information_content_check():
    assert exercises.check_information_content(lambda p: math.log2(1 / p))
    natural = exercises.check_information_content(lambda p: -np.log(p))
    assert not natural and "base 2" in natural.message
    assert not exercises.check_information_content(lambda p: np.log2(p))  # the sign forgotten


def test_cross_entropy_check():
    def learner_cross_entropy(p, q):
        return float(sum(-pi * math.log2(qi) for pi, qi in zip(p, q) if pi > 0))

    assert exercises.check_cross_entropy(learner_cross_entropy)
    assert not exercises.check_cross_entropy(lambda p, q: learner_cross_entropy(q, p))
    assert not exercises.check_cross_entropy(lambda p, q: learner_cross_entropy(p, q) * math.log(2))  # nats


def learner_zigzag(n):
    """Walk the anti-diagonals, alternating direction: up-right on even ones, down-left on odd ones."""
    order = []
    for diagonal in range(2 * n - 1):
        cells = [(row, diagonal - row) for row in range(n) if 0 <= diagonal - row < n]
        order += cells if diagonal % 2 else cells[::-1]
    return order


def test_zigzag_check_names_the_first_wrong_position():
    assert exercises.check_zigzag(learner_zigzag)
    transposed = exercises.check_zigzag(lambda n: [(col, row) for row, col in learner_zigzag(n)])
    assert not transposed and transposed.message == "4×4: position 1 should be (0, 1), got (1, 0)"
    row_major = exercises.check_zigzag(lambda n: [(row, col) for row in range(n) for col in range(n)])
    assert not row_major and row_major.message == "4×4: position 2 should be (1, 0), got (0, 2)"
    short = exercises.check_zigzag(lambda n: learner_zigzag(n)[:-1])
    assert not short and "expected 16 positions, got 15" in short.message


def test_quantizer_check():
    assert exercises.check_quantizer(lambda x, step, rounding: np.sign(x) * np.floor(np.abs(x) / step + rounding))
    plain = exercises.check_quantizer(lambda x, step, rounding: np.round(x / step).astype(int))
    assert not plain and "x = -0.5 should map to -1, got 0" in plain.message
    truncating = exercises.check_quantizer(lambda x, step, rounding: np.trunc(x / step + np.sign(x) * 0.5).astype(int))
    assert not truncating and "rounding 0.333" in truncating.message


def learner_klt(blocks):
    """Eigenvectors of the covariance matrix, largest eigenvalue first, as rows."""
    vectors = blocks.reshape(len(blocks), -1)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(vectors, rowvar=False))
    return eigenvectors[:, np.argsort(eigenvalues)[::-1]].T


def test_klt_check():
    assert exercises.check_klt_basis(learner_klt)
    assert exercises.check_klt_basis(lambda blocks: -learner_klt(blocks))  # signs are free
    unsorted = exercises.check_klt_basis(lambda blocks: np.linalg.eigh(np.cov(blocks, rowvar=False))[1].T)
    assert not unsorted and "sorted by decreasing variance" in unsorted.message
    columns = exercises.check_klt_basis(lambda blocks: learner_klt(blocks).T)  # eigenvectors as columns
    assert not columns
    assert "orthonormal" in exercises.check_klt_basis(lambda blocks: 2 * learner_klt(blocks)).message


def learner_huffman_lengths(frequencies):
    """Merge the two rarest subtrees until one is left; every merge adds a bit to their symbols."""
    if len(frequencies) == 1:
        return [1]
    lengths = [0] * len(frequencies)
    heap = [(int(f), index, [index]) for index, f in enumerate(frequencies)]
    heapq.heapify(heap)
    while len(heap) > 1:
        f1, tie, first = heapq.heappop(heap)
        f2, _, second = heapq.heappop(heap)
        for symbol in first + second:
            lengths[symbol] += 1
        heapq.heappush(heap, (f1 + f2, tie, first + second))
    return lengths


def test_huffman_check():
    assert learner_huffman_lengths([45, 13, 12, 16, 9, 5]) == [1, 3, 3, 3, 4, 4]
    assert exercises.check_huffman_lengths(learner_huffman_lengths)
    flat = exercises.check_huffman_lengths(lambda f: np.full(len(f), int(np.ceil(np.log2(len(f))))))
    assert not flat and "Huffman reaches" in flat.message
    too_short = exercises.check_huffman_lengths(lambda f: np.ones(len(f), int))
    assert not too_short and "Kraft" in too_short.message
    shannon = exercises.check_huffman_lengths(lambda f: np.ceil(-np.log2(np.asarray(f) / np.sum(f))).astype(int))
    assert not shannon and "Huffman reaches" in shannon.message


def test_uniform_noise_check():
    assert exercises.check_uniform_noise(lambda y: y + torch.rand_like(y) - 0.5)
    assert "±0.5" in exercises.check_uniform_noise(lambda y: y + torch.rand_like(y)).message
    assert not exercises.check_uniform_noise(lambda y: torch.round(y))
    detached = exercises.check_uniform_noise(lambda y: (y + torch.rand_like(y) - 0.5).detach())
    assert "detached" in detached.message
    shared = exercises.check_uniform_noise(lambda y: y + torch.rand(1) - 0.5)  # one draw for all
    assert not shared


def test_rate_check():
    assert exercises.check_rate(lambda p, n: float(-torch.log2(p).sum() / n))
    nats = exercises.check_rate(lambda p, n: float(-torch.log(p).sum() / n))
    assert not nats and "nats" in nats.message
    assert not exercises.check_rate(lambda p, n: float(-torch.log2(p).mean()))  # per latent, not per pixel


def test_operating_point_check_names_a_swapped_lagrangian():
    assert exercises.check_operating_point(lambda r, d, lmbda: min(range(len(r)), key=lambda i: r[i] + lmbda * d[i]))
    swapped = exercises.check_operating_point(lambda r, d, lmbda: int(np.argmin(d + lmbda * r)))
    assert not swapped and "D + λ·R" in swapped.message
    assert not exercises.check_operating_point(lambda r, d, lmbda: 99)
    assert not exercises.check_operating_point(lambda r, d, lmbda: "first")


def test_result_renders_in_notebooks():
    passed = exercises.check_information_content(lambda p: math.log2(1 / p))
    assert str(passed).startswith("information content: passed")
    failed = exercises.check_information_content(lambda p: -math.log(p))
    assert str(failed).startswith("information content: not yet")
    assert passed._repr_markdown_().startswith("✅") and failed._repr_markdown_().startswith("❌")
