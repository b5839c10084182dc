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

from nicbook import deadzone, metrics
from nicbook.entropy import HuffmanCode, cross_entropy, information_content
from nicbook.transforms import energy_compaction, learn_klt_basis, zigzag_order


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


def _show(value) -> str:
    """A learner's value as they would write it: numbers plainly, anything else as its repr."""
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return repr(value)


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
            return CheckResult(exercise, False, f"for {description} expected {expected:.4f} dB, got {_show(got)}")
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
            return CheckResult(exercise, False, f"for p={p:g} expected {expected:.6f} bits, got {_show(got)}{hint}")
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
                f"expected {expected:.6f} bits, got {_show(got)}"
            )
    return CheckResult(exercise, True, f"all {len(cases)} pairs of distributions match")


def check_quantizer(my_quantize: Callable[[np.ndarray, float, float], np.ndarray], seed: int = 0) -> CheckResult:
    """``my_quantize(x, step, rounding)`` must return the dead-zone indices of
    :func:`nicbook.deadzone.quantize`: ``sign(x) · floor(|x| / step + rounding)``."""
    exercise = "dead-zone quantizer"
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.laplace(0, 4, 200), [-1.5, -0.5, 0.0, 0.5, 1.5, 2.4999, -2.5]])
    for step, rounding in ((1.0, 0.5), (3.0, 0.5), (2.0, 1 / 3), (0.5, 0.0)):
        got, failure = _call(exercise, my_quantize, x.copy(), step, rounding)
        if failure is not None:
            return failure
        expected = deadzone.quantize(x, step, rounding)
        indices = np.asarray(got)
        if indices.shape != expected.shape:
            return CheckResult(exercise, False, f"expected {expected.shape[0]} indices, got shape {indices.shape}")
        wrong = np.flatnonzero(indices != expected)
        if wrong.size:
            i = int(wrong[0])
            return CheckResult(
                exercise, False, f"with step {step:g} and rounding {rounding:.3g}: x = {x[i]:.4g} should map to "
                f"{int(expected[i])}, got {indices[i]}"
            )
    return CheckResult(exercise, True, "indices match for plain rounding and for dead zones")


def check_klt_basis(my_klt: Callable[[np.ndarray], np.ndarray], seed: int = 0) -> CheckResult:
    """``my_klt(blocks)`` for ``(N, k)`` data must return a ``(k, k)`` orthonormal basis (rows) that
    compacts energy as well as the KLT: rows sorted by decreasing variance (signs may differ)."""
    exercise = "KLT basis"
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(6, 6)) * np.array([8.0, 5.0, 3.0, 2.0, 1.0, 0.5])
    blocks = rng.normal(size=(2000, 6)) @ mixing.T + 3.0
    got, failure = _call(exercise, my_klt, blocks.copy())
    if failure is not None:
        return failure
    basis = np.asarray(got, dtype=np.float64)
    if basis.shape != (6, 6):
        return CheckResult(exercise, False, f"for (2000, 6) data expected a (6, 6) basis, got shape {basis.shape}")
    gram = basis @ basis.T
    if not np.allclose(gram, np.eye(6), atol=1e-6):
        return CheckResult(exercise, False, f"the rows are not orthonormal: basis @ basis.T deviates from I by {np.abs(gram - np.eye(6)).max():.3g}")
    centred = blocks - blocks.mean(axis=0)
    mine = energy_compaction(centred @ basis.T)
    best = energy_compaction(centred @ learn_klt_basis(blocks).T)
    for k in range(5):
        if mine[k] < best[k] - 1e-6:
            return CheckResult(
                exercise, False, f"{_first(k + 1)} {'holds' if k == 0 else 'hold'} {mine[k]:.1%} of the energy; "
                f"with the KLT, {best[k]:.1%} (are the rows sorted by decreasing "
                "variance, and is the mean removed?)"
            )
    return CheckResult(exercise, True, "orthonormal, and it compacts energy exactly as the KLT does")


def _first(count: int) -> str:
    return "the first coefficient" if count == 1 else f"the first {count} coefficients"


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
            return CheckResult(exercise, False, f"for n={n} expected a list of (row, col) pairs, got {_show(got)}")
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
            return CheckResult(exercise, False, f"for {frequencies.tolist()} expected {len(frequencies)} lengths, got {_show(got)}")
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
                               f"expected {expected:.5f} bpp, got {_show(got)}{hint}")
    return CheckResult(exercise, True, "bits per pixel are right for both batches")


def check_operating_point(my_choice: Callable, seed: int = 0) -> CheckResult:
    """``my_choice(rates, distortions, lmbda)`` must return the index of the point that minimises
    ``rate + lmbda * distortion`` (how a λ picks one point of a codec's RD curve)."""
    exercise = "operating point for λ"
    rng = np.random.default_rng(seed)
    for case in range(20):
        rates = np.sort(rng.uniform(0.05, 3.0, 8))
        distortions = np.sort(rng.uniform(2.0, 300.0, 8))[::-1] * rng.uniform(0.9, 1.1, 8)
        lmbda = float(10 ** rng.uniform(-3, -1))
        got, failure = _call(exercise, my_choice, rates.copy(), distortions.copy(), lmbda)
        if failure is not None:
            return failure
        costs = rates + lmbda * distortions
        expected = int(np.argmin(costs))
        try:
            index = int(got)
        except (TypeError, ValueError):
            return CheckResult(exercise, False, f"expected an index, got {_show(got)}")
        if index != expected:
            swapped = int(np.argmin(distortions + lmbda * rates))
            hint = " (that minimises D + λ·R: λ weighs the distortion)" if index == swapped else ""
            yours = f"{costs[index]:.4f}" if 0 <= index < len(costs) else "undefined (no such point)"
            return CheckResult(
                exercise, False,
                f"case {case + 1}, λ = {lmbda:.4g}: point {expected} costs R + λD = {costs[expected]:.4f}, "
                f"point {index} costs {yours}{hint}",
            )
    return CheckResult(exercise, True, "the cheapest point is found for 20 random curves and λ")
