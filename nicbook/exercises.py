"""Automatic checks for the book's exercises.

Each ``check_*`` function runs a learner's implementation on fresh cases, compares it with the
package's own, and returns a :class:`CheckResult` that says precisely what is wrong (the first
failing case, expected against got) or that every case passes. In a notebook the result prints as
one line, so a learner can call a check as the last line of a cell::

    from nicbook.exercises import check_psnr
    check_psnr(my_psnr)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nicbook import metrics
from nicbook.entropy import HuffmanCode, cross_entropy, information_content
from nicbook.transforms import zigzag_order


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one exercise check: ``passed`` and a message for the learner."""

    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "passed" if self.passed else "not yet"
        return f"{self.exercise}: {mark}: {self.message}"

    def _repr_markdown_(self) -> str:
        icon = "✅" if self.passed else "❌"
        return f"{icon} **{self.exercise}**: {self.message}"


def _call(exercise: str, function: Callable, *args):
    """Run the learner's function; an exception becomes a failed check naming it."""
    try:
        return function(*args), None
    except Exception as error:  # the learner's code may raise anything
        return None, CheckResult(exercise, False, f"raised {type(error).__name__}: {error}")


def _close(got, expected: float, tolerance: float) -> bool:
    try:
        value = float(got)
    except (TypeError, ValueError):
        return False
    if np.isinf(expected):
        return bool(np.isinf(value) and np.sign(value) == np.sign(expected))
    return bool(abs(value - expected) <= tolerance * max(1.0, abs(expected)))


def check_psnr(my_psnr: Callable[[np.ndarray, np.ndarray], float], seed: int = 0) -> CheckResult:
    """``my_psnr(a, b)`` for two uint8 RGB images must match :func:`nicbook.metrics.psnr`."""
    exercise = "PSNR"
    rng = np.random.default_rng(seed)
    cases = []
    for shape, noise in (((4, 5, 3), 3.0), ((16, 9, 3), 20.0), ((2, 2, 3), 200.0)):
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = np.clip(a + np.round(rng.normal(0, noise, shape)), 0, 255).astype(np.uint8)
        cases.append((f"uint8 images of shape {shape} with noise σ={noise:g}", a, b))
    dark = np.zeros((3, 3, 3), np.uint8)
    cases.append(("black vs. white pixels (uint8 arithmetic must not wrap)", dark, dark + 255))
    cases.append(("identical images", dark, dark.copy()))
    for description, a, b in cases:
        got, failure = _call(exercise, my_psnr, a.copy(), b.copy())
        if failure is not None:
            return failure
        expected = metrics.psnr(a, b)
        if not _close(got, expected, 1e-6):
            return CheckResult(exercise, False, f"for {description} expected {expected:.4f} dB, got {got!r}")
    return CheckResult(exercise, True, f"all {len(cases)} cases match nicbook.metrics.psnr")


def check_information_content(my_information: Callable[[float], float]) -> CheckResult:
    """``my_information(p)`` must return −log2 p in bits."""
    exercise = "information content"
    for p in (0.5, 0.25, 1.0, 0.99, 1 / 6, 1e-9):
        got, failure = _call(exercise, my_information, p)
        if failure is not None:
            return failure
        expected = float(information_content(p))
        if not _close(got, expected, 1e-9):
            hint = " (is the logarithm base 2?)" if _close(got, expected * np.log(2), 1e-6) else ""
            return CheckResult(exercise, False, f"for p={p:g} expected {expected:.6f} bits, got {got!r}{hint}")
    return CheckResult(exercise, True, "−log₂ p is right for all 6 probabilities")


def check_cross_entropy(my_cross_entropy: Callable[[np.ndarray, np.ndarray], float], seed: int = 0) -> CheckResult:
    """``my_cross_entropy(p, q)``: bits per symbol when data from ``p`` is coded with model ``q``."""
    exercise = "cross-entropy"
    rng = np.random.default_rng(seed)
    cases = [(np.array([0.5, 0.5]), np.array([0.5, 0.5]))]
    cases += [(rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))) for k in (2, 5, 16)]
    cases.append((np.array([1.0, 0.0]), np.array([0.9, 0.1])))
    for p, q in cases:
        got, failure = _call(exercise, my_cross_entropy, p.copy(), q.copy())
        if failure is not None:
            return failure
        expected = cross_entropy(p, q)
        if not _close(got, expected, 1e-6):
            return CheckResult(
                exercise, False, f"for p={np.round(p, 3).tolist()}, q={np.round(q, 3).tolist()} "
                f"expected {expected:.6f} bits, got {got!r}"
            )
    return CheckResult(exercise, True, f"all {len(cases)} pairs of distributions match")


def check_zigzag(my_zigzag: Callable[[int], list], sizes: tuple[int, ...] = (4, 8)) -> CheckResult:
    """``my_zigzag(n)`` must list the ``(row, col)`` positions of an n×n block in JPEG zig-zag order."""
    exercise = "zig-zag"
    for n in sizes:
        got, failure = _call(exercise, my_zigzag, n)
        if failure is not None:
            return failure
        expected = zigzag_order(n)
        try:
            order = np.asarray(got, dtype=np.int64).reshape(-1, 2)
        except (TypeError, ValueError):
            return CheckResult(exercise, False, f"for n={n} expected a list of (row, col) pairs, got {got!r}")
        if len(order) != n * n:
            return CheckResult(exercise, False, f"for n={n} expected {n * n} positions, got {len(order)}")
        for position, (want, have) in enumerate(zip(expected, order)):
            if tuple(want) != tuple(have):
                return CheckResult(
                    exercise, False, f"{n}×{n}: position {position} should be {tuple(int(v) for v in want)}, "
                    f"got {tuple(int(v) for v in have)}"
                )
    return CheckResult(exercise, True, f"the order is right for block sizes {', '.join(map(str, sizes))}")


def check_huffman_lengths(
    my_lengths: Callable[[np.ndarray], np.ndarray], seed: int = 0
) -> CheckResult:
    """``my_lengths(frequencies)`` must return optimal prefix-code lengths (Huffman's)."""
    exercise = "Huffman code"
    rng = np.random.default_rng(seed)
    cases = [np.array([45, 13, 12, 16, 9, 5]), np.array([1, 1]), np.array([10, 1, 1, 1, 1])]
    cases += [rng.integers(1, 100, size) for size in (3, 7, 12)]
    for frequencies in cases:
        got, failure = _call(exercise, my_lengths, frequencies.copy())
        if failure is not None:
            return failure
        lengths = np.asarray(got, dtype=np.int64)
        if lengths.shape != frequencies.shape:
            return CheckResult(exercise, False, f"for {frequencies.tolist()} expected {len(frequencies)} lengths, got {got!r}")
        if np.any(lengths < 1):
            return CheckResult(exercise, False, f"for {frequencies.tolist()} every symbol needs a length ≥ 1, got {lengths.tolist()}")
        kraft = float(np.sum(2.0 ** -lengths))
        if kraft > 1.0 + 1e-12:
            return CheckResult(
                exercise, False, f"lengths {lengths.tolist()} violate Kraft's inequality (sum {kraft:.4f} > 1): "
                "no prefix code has them"
            )
        optimal = HuffmanCode.from_frequencies(frequencies).average_length(frequencies)
        average = float(np.sum(lengths * frequencies) / frequencies.sum())
        if average > optimal + 1e-9:
            return CheckResult(
                exercise, False, f"for {frequencies.tolist()} your lengths {lengths.tolist()} average "
                f"{average:.4f} bits/symbol; Huffman reaches {optimal:.4f}"
            )
    return CheckResult(exercise, True, f"optimal, prefix-free lengths for all {len(cases)} histograms")


def check_uniform_noise(my_noise: Callable, seed: int = 0) -> CheckResult:
    """``my_noise(y)`` for a float tensor must return ``y + u``, ``u ~ U(-1/2, 1/2)`` i.i.d., with
    gradient 1 with respect to ``y`` (the training proxy of rounding)."""
    import torch

    exercise = "uniform-noise proxy"
    torch.manual_seed(seed)
    y = (torch.randn(4, 8, 16, 16) * 5).requires_grad_()
    got, failure = _call(exercise, my_noise, y)
    if failure is not None:
        return failure
    if not isinstance(got, torch.Tensor) or got.shape != y.shape:
        return CheckResult(exercise, False, f"expected a tensor of shape {tuple(y.shape)}, got {type(got).__name__}")
    noise = (got - y).detach()
    if noise.abs().max() > 0.5 + 1e-6:
        return CheckResult(exercise, False, f"the noise reaches {float(noise.abs().max()):.3f}; it must stay within ±0.5")
    if abs(float(noise.mean())) > 0.02 or abs(float(noise.var()) - 1 / 12) > 0.01:
        return CheckResult(
            exercise, False, f"the noise has mean {float(noise.mean()):.3f} and variance {float(noise.var()):.4f}; "
            "U(-1/2, 1/2) has mean 0 and variance 1/12 ≈ 0.0833"
        )
    if float(noise.std(dim=(2, 3)).min()) < 0.2:
        return CheckResult(exercise, False, "the noise is not independent across positions")
    if not got.requires_grad:
        return CheckResult(exercise, False, "the result is detached from y: gradients cannot flow")
    got.sum().backward()
    if y.grad is None or not torch.allclose(y.grad, torch.ones_like(y)):
        return CheckResult(exercise, False, "the gradient with respect to y should be exactly 1 everywhere")
    return CheckResult(exercise, True, "the noise is U(-1/2, 1/2), independent, and gradients pass through")


def check_rate(my_rate: Callable, seed: int = 0) -> CheckResult:
    """``my_rate(likelihoods, num_pixels)`` must return bits per pixel, −Σ log2 p / pixels."""
    import torch

    exercise = "rate estimate"
    torch.manual_seed(seed)
    for shape, pixels in (((1, 8, 4, 4), 256), ((2, 16, 8, 8), 2 * 128 * 128)):
        likelihoods = torch.rand(shape).clamp_min(1e-6)
        got, failure = _call(exercise, my_rate, likelihoods.clone(), pixels)
        if failure is not None:
            return failure
        expected = float(-torch.log2(likelihoods).sum() / pixels)
        if not _close(got, expected, 1e-5):
            nats = expected * np.log(2)
            hint = " (that is in nats: use log base 2)" if _close(got, nats, 1e-4) else ""
            return CheckResult(exercise, False, f"for likelihoods of shape {shape} over {pixels} pixels "
                               f"expected {expected:.5f} bpp, got {got!r}{hint}")
    return CheckResult(exercise, True, "bits per pixel are right for both batches")
