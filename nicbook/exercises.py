"""Automatic checks for the book's exercises, and grading a learner's notebook with them.

Each ``check_*`` function runs a learner's implementation on cases it draws afresh at every call
(hidden sizes, seeds and shapes a pasted answer cannot know) plus edge cases, compares it with the
package's own, and returns a :class:`CheckResult` that names the likely mistake (the first
failing case, expected against got, and a hint for the usual slips) or says that every case
passes. In a notebook the result shows as one line when the check is the last line of a cell::

    from nicbook.exercises import check_psnr
    check_psnr(my_psnr)

In a script, where nothing displays a returned value, the check prints that line itself.

**Time limit.** The learner's function gets ``time_limit`` seconds in all (10 by default, a
keyword argument of every check, ``None`` for no limit); a function still running then is
stopped, and the check fails with a verdict that says so. The limit uses ``SIGALRM``, so it holds
where the check runs on the main thread of a POSIX system: scripts, the terminal and Jupyter
kernels (which run cells on the main thread), on Linux and macOS. Elsewhere (Windows, a check
called from another thread) the function runs without a limit. A signal is handled between
Python bytecodes, so one long call into compiled code (a huge NumPy operation) is stopped only
when it returns.

**Grading.** :func:`grade_notebook` (the ``nicbook grade`` command) executes a learner's
notebook in a fresh kernel with a time limit per cell; every check that runs appends its result
to the file named by the ``NICBOOK_GRADING_LOG`` environment variable, and the grade is the
list of those results, one per check. Grading trusts the notebook's code as far as running it
does: code written to cheat (writing to that file, replacing a check) is not detected, and the
notebook can do whatever its user may, so run untrusted notebooks in a sandbox.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import special

from nicbook import deadzone, metrics
from nicbook.entropy import HuffmanCode, cross_entropy, information_content
from nicbook.errors import NicbookError
from nicbook.transforms import energy_compaction, learn_klt_basis, zigzag_order

#: Seconds a learner's function may run in all during one check, unless the check is told otherwise.
DEFAULT_TIME_LIMIT = 10.0

#: Environment variable naming a JSON-lines file every check appends its result to (set by grading).
GRADING_LOG = "NICBOOK_GRADING_LOG"


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one exercise check: ``passed`` and a message for the learner; ``check`` names
    the function that produced it (``"check_psnr"``)."""

    exercise: str
    passed: bool
    message: str
    check: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "passed" if self.passed else "not yet"
        return f"{self.exercise}: {mark}: {self.message}"

    def _repr_markdown_(self) -> str:
        icon = "✅" if self.passed else "❌"
        return f"{icon} **{self.exercise}**: {self.message}"


# --------------------------------------------------------------------------- running a check


class _Failed(Exception):
    """A case the learner's function got wrong; the message is the verdict."""


class _OutOfTime(BaseException):
    """Raised inside the learner's function by the alarm (a BaseException, so ``except Exception``
    in the learner's code does not swallow it)."""


def _fresh_rng() -> np.random.Generator:
    """A generator seeded from the operating system: every call of a check draws other cases."""
    return np.random.default_rng(secrets.randbits(64))


def _can_interrupt() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class _Learner:
    """The learner's function, called under the check's time limit (``None``: no limit); what goes
    wrong becomes a :class:`_Failed` that names the case."""

    def __init__(self, function: Callable, time_limit: float | None):
        if not callable(function):
            raise _Failed(
                f"expected your function, got {_show(function)} (pass the function itself, without calling it)"
            )
        self.function = function
        self.time_limit = math.inf if time_limit is None else float(time_limit)
        self.remaining = self.time_limit
        self._saved = None  # the SIGALRM handler and timer the alarm replaced

    def __call__(self, case: str, *args):
        if self.remaining <= 0:
            raise _Failed(self._timeout(case))
        start = time.monotonic()
        try:
            if math.isfinite(self.remaining) and _can_interrupt():
                self._arm()
                try:
                    return self.function(*args)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            return self.function(*args)
        except _OutOfTime:
            raise _Failed(self._timeout(case)) from None
        except Exception as error:  # the learner's code may raise anything
            raise _Failed(f"for {case} your function raised {type(error).__name__}: {_explain(error, args)}") from None
        finally:
            elapsed = time.monotonic() - start
            self.remaining -= elapsed
            self._disarm(elapsed)

    def _arm(self) -> None:
        def alarm(signum, frame):
            raise _OutOfTime

        self._saved = (signal.signal(signal.SIGALRM, alarm), (0.0, 0.0))
        self._saved = (self._saved[0], signal.setitimer(signal.ITIMER_REAL, self.remaining))

    def _disarm(self, elapsed: float) -> None:
        """Put back the handler and any timer that ran before (the alarm has fired or was cancelled:
        nothing can interrupt this)."""
        if self._saved is None:
            return
        (handler, (delay, interval)), self._saved = self._saved, None
        signal.signal(signal.SIGALRM, handler)
        if delay > 0:
            signal.setitimer(signal.ITIMER_REAL, max(delay - elapsed, 1e-3), interval)

    def _timeout(self, case: str) -> str:
        return (
            f"stopped after the time limit of {self.time_limit:g} s: for {case} your function had not "
            "returned (a loop that never ends? pass time_limit=... to allow more time)"
        )


def _explain(error: Exception, args) -> str:
    """The exception's text, with what it usually means for an exercise."""
    text = str(error) or "(no message)"
    lowered = text.lower()
    tensors = any(type(arg).__module__.startswith("torch") for arg in args)
    several = tensors or any(isinstance(arg, np.ndarray) for arg in args)
    arrays, module = ("tensors", "torch") if tensors else ("arrays", "np")
    scalar_only = ("only length-1", "0-dimensional", "size-1", "must be real number", "only one element")
    if several and isinstance(error, (TypeError, ValueError)) and any(phrase in lowered for phrase in scalar_only):
        return (
            f"{text}. Your function must accept whole {arrays}, not only single numbers (math.log2, "
            f"math.sqrt... take one number; use {module}.log2, {module}.sqrt...)"
        )
    if "truth value of an array" in lowered or "boolean value of tensor" in lowered:
        return (f"{text}. `if`, `and`, `or` and `max` on whole {arrays} are ambiguous: use {module}.where or a "
                "boolean mask")
    if isinstance(error, ZeroDivisionError):
        return f"{text}. Which input makes a denominator zero? Handle that case on its own"
    return text


def _run(
    exercise: str, check: str, body: Callable, function: Callable, time_limit: float | None, *options
) -> CheckResult:
    """Run one check's cases; the verdict is recorded for grading and printed in scripts."""
    try:
        result = CheckResult(exercise, True, body(_Learner(function, time_limit), *options), check)
    except _Failed as failure:
        result = CheckResult(exercise, False, str(failure), check)
    _announce(result)
    return result


def _announce(result: CheckResult) -> None:
    log = os.environ.get(GRADING_LOG)
    if log:
        with open(log, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(asdict(result)) + "\n")
    if not _displays_results():
        print(result)


def _displays_results() -> bool:
    """Whether an interactive shell shows the returned result (IPython, Jupyter, the Python prompt)."""
    if hasattr(sys, "ps1"):
        return True
    ipython = sys.modules.get("IPython")
    return ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None


# --------------------------------------------------------------------------- what the learner returned


def _show(value) -> str:
    """A learner's value as they would write it: numbers and truth values plainly, anything else as its repr."""
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."


def _describe(value) -> str:
    """What kind of thing ``value`` is, for a message: "a list of 8 items", "an array of shape (3,)"."""
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        return f"{'a tensor' if type(value).__module__.startswith('torch') else 'an array'} of shape {tuple(shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} item{'' if len(value) == 1 else 's'}"
    return f"{type(value).__name__} {_show(value)}"


def _number(got, case: str, what: str) -> float:
    """The learner's single number, or a verdict that names what came back instead."""
    shape = getattr(got, "shape", None)
    if isinstance(got, (list, tuple)) or (shape is not None and len(shape) > 0 and math.prod(shape) != 1):
        raise _Failed(f"for {case} your function returned {_describe(got)}: expected one number, {what}")
    try:
        return float(got)
    except (TypeError, ValueError):
        raise _Failed(f"for {case} your function returned {_describe(got)}: expected one number, {what}") from None


def _array(got, dtype=np.float64) -> np.ndarray | None:
    """The learner's result as a NumPy array of ``dtype``, or None when it is not one."""
    if isinstance(got, (str, bytes)) or got is None:
        return None
    if hasattr(got, "detach"):  # a torch tensor
        got = got.detach().cpu().numpy()
    try:
        return np.asarray(got, dtype=dtype)
    except (TypeError, ValueError):
        return None


def _close(got: float, expected: float, tolerance: float) -> bool:
    if np.isinf(expected) or np.isinf(got):
        return bool(got == expected)
    return bool(abs(got - expected) <= tolerance * max(1.0, abs(expected)))


def _hint(got: float, tolerance: float, slips: dict[str, float | tuple[float, ...]]) -> str:
    """`` (hint)`` for the first slip whose value (or one of whose values) the learner's result
    matches, else ``""``."""
    for hint, values in slips.items():
        for value in values if isinstance(values, tuple) else (values,):
            if np.isfinite(value) and _close(got, value, tolerance):
                return f" ({hint})"
    return ""


# --------------------------------------------------------------------------- the checks


def check_psnr(
    my_psnr: Callable[[np.ndarray, np.ndarray], float], *, time_limit: float | None = DEFAULT_TIME_LIMIT
) -> CheckResult:
    """``my_psnr(a, b)`` for two uint8 RGB images must match :func:`nicbook.metrics.psnr`."""
    return _run("PSNR", "check_psnr", _psnr_cases, my_psnr, time_limit)


def _psnr_cases(learner: _Learner) -> str:
    rng = _fresh_rng()
    cases = []
    hidden = (tuple(int(v) for v in rng.integers(2, 24, 2)) + (3,), float(rng.uniform(2, 60)))
    for shape, noise in (((4, 5, 3), 3.0), ((16, 9, 3), 20.0), hidden):
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = np.clip(a + np.round(rng.normal(0, noise, shape)), 0, 255).astype(np.uint8)
        cases.append((f"uint8 images of shape {shape} with noise σ={noise:.3g}", a, b))
    dark = np.zeros((3, 3, 3), np.uint8)
    cases.append(("black vs. white pixels", dark, dark + 255))
    cases.append(("identical images", dark, dark.copy()))
    for description, a, b in cases:
        got = _number(learner(description, a.copy(), b.copy()), description, "the PSNR in dB of the whole image")
        expected = metrics.psnr(a, b)
        if _close(got, expected, 1e-6):
            continue
        if np.isinf(expected):
            raise _Failed(
                f"for {description} expected inf (MSE 0: no error at all), got {_show(got)}: "
                "return math.inf when the MSE is 0"
            )
        wrapped = (a - b).astype(np.float64) ** 2, ((a - b) ** 2).astype(np.float64)  # uint8 arithmetic wraps
        rmse_psnr = 10 * np.log10(255**2 / np.sqrt(metrics.mse(a, b)))
        hint = _hint(got, 1e-6, {
            "uint8 arithmetic wraps around: 3 - 5 gives 254, and squares above 255 wrap too. Compute in float: "
            "a.astype(np.float64) - b": tuple(10 * np.log10(255**2 / np.mean(w)) for w in wrapped if np.mean(w) > 0),
            "is the peak 255? For 8-bit images PSNR = 10·log10(255² / MSE)": expected - 20 * np.log10(255),
            "20·log10 is for amplitudes; MSE is already a power, so use 10·log10": 2 * expected,
            "is the MSE squared? It is the mean of the squared differences, not their root": rmse_psnr,
        })
        raise _Failed(f"for {description} expected {expected:.4f} dB, got {_show(got)}{hint}")
    return f"all {len(cases)} cases match nicbook.metrics.psnr"


def check_information_content(
    my_information: Callable[[np.ndarray], np.ndarray], *, time_limit: float | None = DEFAULT_TIME_LIMIT
) -> CheckResult:
    """``my_information(p)`` for a NumPy array of probabilities must return −log2 p in bits,
    element by element, with ``inf`` for p = 0 and 0 for p = 1."""
    return _run("information content", "check_information_content", _information_cases, my_information, time_limit)


def _information_cases(learner: _Learner) -> str:
    rng = _fresh_rng()
    cases = [
        ("an array of probabilities", np.concatenate([[0.5, 0.25, 0.99, 1 / 6, 1e-9], rng.uniform(1e-6, 1, 5)])),
        ("a 2-D array of probabilities", rng.uniform(1e-3, 1, (2, 3))),
        ("an array with p = 0 and p = 1", np.array([1.0, 0.0, 0.5, 0.0])),
    ]
    for description, p in cases:
        got = learner(description, p.copy())
        expected = information_content(p)
        values = _array(got)
        if values is None or values.shape != p.shape:
            raise _Failed(
                f"for {description} of shape {p.shape} your function returned {_describe(got)}: expected an "
                "array of the same shape, the information of each probability"
            )
        wrong = np.flatnonzero(~np.isclose(values, expected, rtol=1e-9, atol=1e-12, equal_nan=False).ravel())
        if wrong.size:
            i = int(wrong[0])
            q, value, want = float(p.flat[i]), float(values.flat[i]), float(expected.flat[i])
            slips = {"is the logarithm base 2?": want * np.log(2), "mind the sign: −log₂ p ≥ 0": -want}
            hint = _hint(value, 1e-6, slips)
            if q == 0 and value == 0:
                hint = (" (0 · log 0 = 0 is a convention of entropy sums; the information of an impossible symbol "
                        "itself is infinite: -np.log2(0) is inf)")
            elif not hint and 0 <= value < want and (q == 0 or 2.0**-value < q + 1e-3):  # p raised a little
                hint = (" (is p clipped, or a small ε added? That lowers the information of rare symbols, and an "
                        "impossible symbol costs infinitely many bits: -np.log2(0) is inf, and "
                        "np.errstate(divide='ignore') silences its warning)")
            raise _Failed(f"for p={q:.6g} (in {description}) expected {want:.6f} bits, got {_show(value)}{hint}")
    return "−log₂ p is right for arrays of probabilities, for p = 1 and for p = 0"


def check_cross_entropy(
    my_cross_entropy: Callable[[np.ndarray, np.ndarray], float], *, time_limit: float | None = DEFAULT_TIME_LIMIT
) -> CheckResult:
    """``my_cross_entropy(p, q)``: bits per symbol when data from ``p`` is coded with model ``q``."""
    return _run("cross-entropy", "check_cross_entropy", _cross_entropy_cases, my_cross_entropy, time_limit)


def _cross_entropy_cases(learner: _Learner) -> str:
    rng = _fresh_rng()
    cases = [(np.array([0.5, 0.5]), np.array([0.5, 0.5]))]
    cases += [(rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))) for k in (2, 5, int(rng.integers(3, 20)))]
    cases.append((np.array([1.0, 0.0]), np.array([0.9, 0.1])))
    cases.append((np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.75, 0.0])))
    for p, q in cases:
        description = f"p={np.round(p, 3).tolist()}, q={np.round(q, 3).tolist()}"
        got = _number(learner(description, p.copy(), q.copy()), description, "the bits per symbol (a sum over symbols)")
        expected = cross_entropy(p, q)
        if not _close(got, expected, 1e-6):
            hint = _hint(got, 1e-6, {
                "that is H(q, p): the data come from p, the code lengths from the model q": cross_entropy(q, p),
                "that is in nats: use log base 2": expected * np.log(2),
                "that is the entropy of p: the code lengths come from q": cross_entropy(p, p),
            })
            if np.isnan(got):
                hint = " (symbols with p = 0 contribute 0, even where q = 0: skip them)"
            raise _Failed(f"for {description} expected {expected:.6f} bits, got {_show(got)}{hint}")
    return f"all {len(cases)} pairs of distributions match"


def check_quantizer(
    my_quantize: Callable[[np.ndarray, float, float], np.ndarray], *, time_limit: float | None = DEFAULT_TIME_LIMIT
) -> CheckResult:
    """``my_quantize(x, step, rounding)`` must return the dead-zone indices of
    :func:`nicbook.deadzone.quantize`: ``sign(x) · floor(|x| / step + rounding)``."""
    return _run("dead-zone quantizer", "check_quantizer", _quantizer_cases, my_quantize, time_limit)


def _quantizer_cases(learner: _Learner) -> str:
    rng = _fresh_rng()
    x = np.concatenate([[-1.5, -0.5, 0.0, 0.5, 1.5, 2.4999, -2.5], rng.laplace(0, 4, int(rng.integers(100, 300)))])
    hidden = (float(rng.uniform(0.2, 5)), float(rng.uniform(0, 0.5)))
    settings = [(1.0, 0.5), (3.0, 0.5), (2.0, 1 / 3), (0.5, 0.0), hidden]
    for step, rounding in settings:
        description = f"step {step:.4g} and rounding {rounding:.3g}"
        got = learner(description, x.copy(), step, rounding)
        expected = deadzone.quantize(x, step, rounding)
        indices = _array(got)
        if indices is None or indices.shape != expected.shape:
            raise _Failed(f"for {len(x)} samples with {description} your function returned {_describe(got)}: "
                          f"expected {len(x)} indices, one per sample (shape {expected.shape})")
        wrong = np.flatnonzero(indices != expected)
        if wrong.size:
            i = int(wrong[0])
            hint = ""
            if np.array_equal(indices, deadzone.quantize(x, step, 0.5)):
                hint = " (the rounding argument r is ignored: it replaces the 1/2 of plain rounding)"
            elif rounding == 0.5 and abs(abs(x[i] / step) % 1 - 0.5) < 1e-12:
                hint = " (np.round rounds halves to the even neighbour; the quantizer rounds them away from zero)"
            elif not np.all(np.asarray(indices, dtype=np.float64) == np.round(np.asarray(indices, dtype=np.float64))):
                hint = " (indices are integers: floor, then multiply by the sign)"
            raise _Failed(
                f"with {description}: x = {x[i]:.4g} should map to {int(expected[i])}, got {_show(indices[i])}{hint}"
            )
    return "indices match for plain rounding and for dead zones"


def check_klt_basis(
    my_klt: Callable[[np.ndarray], np.ndarray], *, time_limit: float | None = DEFAULT_TIME_LIMIT
) -> CheckResult:
    """``my_klt(blocks)`` for ``(N, k)`` data must return a ``(k, k)`` orthonormal basis (rows) that
    compacts energy as well as the KLT: rows sorted by decreasing variance (signs may differ)."""
    return _run("KLT basis", "check_klt_basis", _klt_cases, my_klt, time_limit)


def _klt_cases(learner: _Learner) -> str:
    rng = _fresh_rng()
    for k in (6, int(rng.integers(3, 10))):
        scales = np.sort(rng.uniform(0.3, 10.0, k))[::-1] * np.geomspace(1, 0.1, k)
        blocks = rng.normal(size=(2000, k)) @ (rng.normal(size=(k, k)) * scales).T + rng.uniform(1, 5, k)
        description = f"(2000, {k}) data"
        got = learner(description, blocks.copy())
        _judge_klt(got, blocks, description)
    return "orthonormal, and it compacts energy exactly as the KLT does"


def _judge_klt(got, blocks: np.ndarray, description: str) -> None:
    k = blocks.shape[1]
    basis = _array(got)
    if basis is None:
        raise _Failed(f"for {description} your function returned {_describe(got)}: expected a ({k}, {k}) array")
    if basis.shape != (k, k):
        guess = {
            (k,): " (the eigenvalues? the basis is the eigenvectors)",
            blocks.shape: " (the transformed data? the basis is the eigenvectors)",
            (len(blocks),) * 2: " (a covariance over the samples? np.cov takes each row as one variable: pass "
            "rowvar=False for the covariance of the k columns)",
        }.get(basis.shape, "")
        raise _Failed(f"for {description} expected a ({k}, {k}) basis, got {_describe(got)}{guess}")
    gram = basis @ basis.T
    if not np.allclose(gram, np.eye(k), atol=1e-6):
        deviation = np.abs(gram - np.eye(k)).max()
        hint = " (the covariance matrix itself? The basis is its eigenvectors)" if np.allclose(basis, basis.T) else ""
        raise _Failed(
            f"for {description} the rows are not orthonormal: basis @ basis.T is {deviation:.3g} away from I{hint}"
        )
    centred = blocks - blocks.mean(axis=0)
    best = energy_compaction(centred @ learn_klt_basis(blocks).T)

    def compacts(candidate: np.ndarray) -> bool:
        return bool(np.all(energy_compaction(centred @ candidate.T)[:-1] >= best[:-1] - 1e-6))

    def by_variance(candidate: np.ndarray) -> np.ndarray:
        return candidate[np.argsort(-np.var(centred @ candidate.T, axis=0))]

    if compacts(basis):
        return
    mine = energy_compaction(centred @ basis.T)
    k_bad = int(np.argmax(mine[:-1] < best[:-1] - 1e-6))
    if compacts(by_variance(basis)):
        hint = ("the rows are the right eigenvectors, but not sorted by decreasing variance: np.linalg.eigh returns "
                "eigenvalues in ascending order, so reverse the order (np.argsort(eigenvalues)[::-1])")
    elif compacts(basis.T):
        hint = ("the eigenvectors are the columns of your matrix: np.linalg.eigh returns them as columns, and the "
                "basis wants them as rows, so transpose it (eigenvectors[:, order].T)")
    elif compacts(by_variance(basis.T)):
        hint = ("the eigenvectors are the columns of your matrix (np.linalg.eigh returns them as columns: transpose) "
                "and in ascending order of variance (reverse it)")
    else:
        hint = ("is the mean removed before the covariance (np.cov does it), and is it the covariance of the "
                "(N, k) data over its k columns?")
    raise _Failed(
        f"for {description} {_first(k_bad + 1)} {'holds' if k_bad == 0 else 'hold'} {mine[k_bad]:.1%} of the energy; "
        f"with the KLT, {best[k_bad]:.1%}: {hint}"
    )


def _first(count: int) -> str:
    return "the first coefficient" if count == 1 else f"the first {count} coefficients"


def check_zigzag(
    my_zigzag: Callable[[int], list], sizes: tuple[int, ...] = (4, 8), *, time_limit: float | None = DEFAULT_TIME_LIMIT
) -> CheckResult:
    """``my_zigzag(n)`` must list the ``(row, col)`` positions of an n×n block in JPEG zig-zag
    order. It is tried on ``sizes`` and on two hidden sizes from 2 to 12 drawn afresh each call."""
    return _run("zig-zag", "check_zigzag", _zigzag_cases, my_zigzag, time_limit, tuple(sizes))


def _zigzag_cases(learner: _Learner, sizes: tuple[int, ...]) -> str:
    rng = _fresh_rng()
    others = [n for n in range(2, 13) if n not in sizes]
    hidden = [int(n) for n in rng.choice(others, size=min(2, len(others)), replace=False)]
    for n in sizes:
        _judge_zigzag(learner(f"n={n}", n), n, f"n={n}")
    for n in hidden:
        label = f"n={n} (a hidden size)"
        try:
            _judge_zigzag(learner(label, n), n, label)
        except _Failed as failure:
            raise _Failed(f"{failure} (the sizes shown pass, this one does not: does your function work out the "
                          "order for any n, odd or even, or return one pasted for the sizes shown?)") from None
    return f"the order is right for block sizes {', '.join(map(str, sizes))} and for hidden sizes"


def _judge_zigzag(got, n: int, label: str) -> None:
    expected = zigzag_order(n)
    order = _array(got, np.int64)
    if order is None:
        raise _Failed(
            f"for {label} your function returned {_describe(got)}: expected a list of n² = {n * n} (row, col) pairs"
        )
    if order.shape == (n, n):
        raise _Failed(f"for {label} your function returned an array of shape ({n}, {n}), a table? Expected the "
                      f"n² = {n * n} (row, col) positions in scan order, a list of pairs")
    if order.ndim == 1:
        raise _Failed(f"for {label} your function returned {len(order)} single numbers: expected n² = {n * n} "
                      "(row, col) pairs, e.g. [(0, 0), (0, 1), (1, 0), ...] (flat index k is the pair (k // n, k % n))")
    if order.ndim != 2 or order.shape[1] != 2:
        raise _Failed(f"for {label} your function returned {_describe(got)}: expected n² = {n * n} (row, col) pairs")
    if len(order) != n * n:
        raise _Failed(
            f"for {label} your function returned a list of {len(order)} positions: "
            f"expected n² = {n * n} (row, col) pairs"
        )
    for position, (want, have) in enumerate(zip(expected, order)):
        if tuple(want) != tuple(have):
            hint = ""
            if np.array_equal(order, expected[:, ::-1]):
                hint = " (rows and columns are swapped: the scan goes right along the first row first, to (0, 1))"
            elif not np.all((order >= 0) & (order < n)):
                hint = f" (rows and columns run from 0 to {n - 1})"
            raise _Failed(f"{n}×{n}{'' if label == f'n={n}' else ' (a hidden size)'}: position {position} should be "
                          f"{tuple(int(v) for v in want)}, got {tuple(int(v) for v in have)}{hint}")


def check_huffman_lengths(
    my_lengths: Callable[[np.ndarray], np.ndarray], *, time_limit: float | None = DEFAULT_TIME_LIMIT
) -> CheckResult:
    """``my_lengths(frequencies)`` must return optimal prefix-code lengths (Huffman's)."""
    return _run("Huffman code", "check_huffman_lengths", _huffman_cases, my_lengths, time_limit)


def _huffman_cases(learner: _Learner) -> str:
    rng = _fresh_rng()
    cases = [np.array([45, 13, 12, 16, 9, 5]), np.array([1, 1]), np.array([10, 1, 1, 1, 1])]
    cases += [rng.integers(1, 100, size) for size in (3, 7, int(rng.integers(8, 30)))]
    for frequencies in cases:
        description = f"frequencies {frequencies.tolist()}"
        got = learner(description, frequencies.copy())
        lengths = _array(got, np.int64)
        if lengths is None or lengths.shape != frequencies.shape:
            raise _Failed(
                f"for {description} expected {len(frequencies)} lengths, one per symbol, got {_describe(got)}"
            )
        if np.any(lengths < 1):
            raise _Failed(f"for {description} every symbol needs a length ≥ 1, got {lengths.tolist()}")
        kraft = float(np.sum(2.0 ** -lengths))
        if kraft > 1.0 + 1e-12:
            raise _Failed(
                f"lengths {lengths.tolist()} violate Kraft's inequality (sum {kraft:.4f} > 1): no prefix code has them"
            )
        optimal = HuffmanCode.from_frequencies(frequencies).average_length(frequencies)
        average = float(np.sum(lengths * frequencies) / frequencies.sum())
        if average > optimal + 1e-9:
            raise _Failed(
                f"for {description} your lengths {lengths.tolist()} average {average:.4f} bits/symbol; "
                f"Huffman reaches {optimal:.4f}"
            )
    return f"optimal, prefix-free lengths for all {len(cases)} histograms"


def check_uniform_noise(my_noise: Callable, *, time_limit: float | None = DEFAULT_TIME_LIMIT) -> CheckResult:
    """``my_noise(y)`` for a float tensor must return ``y + u``, ``u ~ U(-1/2, 1/2)`` i.i.d., with
    gradient 1 with respect to ``y`` (the training proxy of rounding)."""
    return _run("uniform-noise proxy", "check_uniform_noise", _uniform_noise_cases, my_noise, time_limit)


def _uniform_noise_cases(learner: _Learner) -> str:
    import torch

    generator = torch.Generator().manual_seed(secrets.randbits(63))
    shape = (int(torch.randint(2, 6, (), generator=generator)), 8, 16, 16)
    y = (torch.randn(shape, generator=generator) * 5).requires_grad_()
    description = f"y of shape {shape}"
    got = learner(description, y)
    if not isinstance(got, torch.Tensor):
        raise _Failed(f"for {description} your function returned {_describe(got)}: expected a torch tensor "
                      "(torch.rand_like(y) keeps y's shape, type and device, and gradients flow through y + u)")
    if got.shape != y.shape:
        raise _Failed(
            f"for {description} your function returned a tensor of shape {tuple(got.shape)}: expected y's shape"
        )
    noise = (got - y).detach()
    if noise.abs().max() > 0.5 + 1e-6:
        raise _Failed(
            f"the noise reaches {float(noise.abs().max()):.3f}; it must stay within ±0.5 "
            "(torch.rand_like draws from [0, 1))"
        )
    if float(noise.std(dim=(2, 3)).min()) < 0.2:
        raise _Failed("the noise is not independent across positions (one draw for all? use torch.rand_like(y))")
    if abs(float(noise.mean())) > 0.02 or abs(float(noise.var()) - 1 / 12) > 0.01:
        raise _Failed(f"the noise has mean {float(noise.mean()):.3f} and variance {float(noise.var()):.4f}; "
                      "U(-1/2, 1/2) has mean 0 and variance 1/12 ≈ 0.0833")
    if not got.requires_grad:
        raise _Failed(
            "the result is detached from y: gradients cannot flow (no .detach(), .numpy() or torch.no_grad())"
        )
    got.sum().backward()
    if y.grad is None or not torch.allclose(y.grad, torch.ones_like(y)):
        raise _Failed("the gradient with respect to y should be exactly 1 everywhere")
    return "the noise is U(-1/2, 1/2), independent, and gradients pass through"


def check_rate(my_rate: Callable, *, time_limit: float | None = DEFAULT_TIME_LIMIT) -> CheckResult:
    """``my_rate(likelihoods, num_pixels)`` must return bits per pixel, −Σ log2 p / pixels."""
    return _run("rate estimate", "check_rate", _rate_cases, my_rate, time_limit)


def _rate_cases(learner: _Learner) -> str:
    import torch

    generator = torch.Generator().manual_seed(secrets.randbits(63))
    batch, channels, height = (int(v) for v in torch.randint(1, 5, (3,), generator=generator))
    shapes = [(1, 8, 4, 4), (2, 16, 8, 8), (batch, 4 * channels, height + 2, height + 3)]
    for shape in shapes:
        pixels = shape[0] * 16 * shape[2] * 16 * shape[3]  # latents downsampled 16×
        likelihoods = torch.rand(shape, generator=generator).clamp_min(1e-6)
        description = f"likelihoods of shape {shape} over {pixels} pixels"
        got = _number(learner(description, likelihoods.clone(), pixels), description, "the bits per pixel of the batch")
        bits = -torch.log2(likelihoods.double())
        expected = float(bits.sum() / pixels)
        if not _close(got, expected, 1e-5):
            hint = _hint(got, 1e-4, {
                "that is in nats: use log base 2": expected * np.log(2),
                "that is the mean over latents, bits per latent: sum the bits of all latents, then divide by "
                "num_pixels": float(bits.mean()),
                "that is the total number of bits: divide by num_pixels": float(bits.sum()),
                "that is divided by the batch size twice: num_pixels counts the pixels of all images in the batch, "
                "so divide the sum over the whole batch by it, without a mean over images": expected / shape[0],
                "mind the sign: the likelihoods are ≤ 1, so −log₂ p ≥ 0": -expected,
            })
            raise _Failed(f"for {description} expected {expected:.5f} bpp, got {_show(got)}{hint}")
    return f"bits per pixel are right for all {len(shapes)} batches"


def check_gaussian_bits(
    my_bits: Callable[[np.ndarray, np.ndarray], np.ndarray], *, time_limit: float | None = DEFAULT_TIME_LIMIT
) -> CheckResult:
    """``my_bits(symbols, scales)``: ``−log2 P(k)`` of integer symbols ``k`` under zero-mean Gaussians
    of the given scales, ``P(k) = Φ((k + ½)/σ) − Φ((k − ½)/σ)``, element by element (the rate of a
    hyperprior's latents, chapter 9)."""
    return _run("bits under a Gaussian", "check_gaussian_bits", _gaussian_bits_cases, my_bits, time_limit)


def _gaussian_bits(symbols: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``−log2 P(k)`` computed in the lower tail, ``P(k) = P(−|k|)``, where no digit cancels."""
    k = -np.abs(np.asarray(symbols, dtype=np.float64))
    scales = np.asarray(scales, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return -np.log2(special.ndtr((k + 0.5) / scales) - special.ndtr((k - 0.5) / scales))


def _gaussian_bits_cases(learner: _Learner) -> str:
    rng = _fresh_rng()
    shape = tuple(int(v) for v in rng.integers(2, 9, 2))
    cases = [
        ("symbols and scales of shape (6,)", np.array([0, 1, -1, 3, -4, 2]), np.array([1.0, 0.5, 2.0, 3.0, 1.5, 0.3])),
        (f"symbols and scales of shape {shape}", rng.integers(-8, 9, shape), rng.uniform(0.2, 10.0, shape)),
        ("symbols far in the upper tail", np.array([9, 12, 20, -12]), np.array([1.0, 1.0, 2.0, 1.0])),
    ]
    for description, symbols, scales in cases:
        got = learner(description, symbols.copy(), scales.copy())
        expected = _gaussian_bits(symbols, scales)
        values = _array(got)
        if values is None or values.shape != symbols.shape:
            raise _Failed(
                f"for {description} your function returned {_describe(got)}: expected an array of shape "
                f"{symbols.shape}, the bits of each symbol"
            )
        wrong = np.flatnonzero(~np.isclose(values, expected, rtol=1e-6, atol=1e-9).ravel())
        if wrong.size:
            i = int(wrong[0])
            k, scale, value, want = int(symbols.flat[i]), float(scales.flat[i]), float(values.flat[i]), float(expected.flat[i])
            hint = _hint(value, 1e-6, {
                "is the logarithm base 2?": want * np.log(2),
                "mind the sign: −log₂ P ≥ 0": -want,
                "P(k) is the mass of the bin from k − ½ to k + ½, not the density at k": -np.log2(
                    np.exp(-0.5 * (k / scale) ** 2) / (scale * np.sqrt(2 * np.pi))),
            })
            if not hint and k > 5 * scale:  # deep in the upper tail
                hint = (" (far in the upper tail both values of Φ round to 1 and their difference loses every "
                        "digit: the density is symmetric, so compute P(−|k|) in the lower tail)")
            raise _Failed(f"for k={k}, σ={scale:.4g} (in {description}) expected {want:.6f} bits, got {_show(value)}{hint}")
    return "the bits are right for arrays of symbols and scales, far tails included"


def check_operating_point(my_choice: Callable, *, time_limit: float | None = DEFAULT_TIME_LIMIT) -> CheckResult:
    """``my_choice(rates, distortions, lmbda)`` must return the index of the point that minimises
    ``rate + lmbda * distortion`` (how a λ picks one point of a codec's RD curve), as an integer."""
    return _run("operating point for λ", "check_operating_point", _operating_point_cases, my_choice, time_limit)


def _operating_point_cases(learner: _Learner) -> str:
    rng = _fresh_rng()
    for case in range(20):
        count = int(rng.integers(3, 12))
        rates = np.sort(rng.uniform(0.05, 3.0, count))
        distortions = np.sort(rng.uniform(2.0, 300.0, count))[::-1] * rng.uniform(0.9, 1.1, count)
        lmbda = float(10 ** rng.uniform(-3, -1))
        description = f"case {case + 1} ({count} points, λ = {lmbda:.4g})"
        costs = rates + lmbda * distortions
        index = _index(learner(description, rates.copy(), distortions.copy(), lmbda), description, costs)
        expected = int(np.argmin(costs))
        if index != expected:
            swapped = int(np.argmin(distortions + lmbda * rates))
            hint = " (that minimises D + λ·R: λ weighs the distortion)" if index == swapped else ""
            yours = f"{costs[index]:.4f}" if 0 <= index < len(costs) else "undefined (no such point)"
            raise _Failed(
                f"{description}: point {expected} costs R + λD = {costs[expected]:.4f}, "
                f"point {index} costs {yours}{hint}"
            )
    return "the cheapest point is found for 20 random curves and λ"


def _index(got, description: str, costs: np.ndarray) -> int:
    """The learner's integer index of one of ``costs``; a float (even a whole one), a bool or an array
    is refused with a message that names it."""
    values = None if isinstance(got, (bool, np.bool_)) else _array(got, None)
    scalar = values is not None and values.shape == ()
    if scalar and np.issubdtype(values.dtype, np.integer):
        return int(values)
    if scalar and np.issubdtype(values.dtype, np.floating):
        number = float(values)
        kind = f"the float {number!r}"
        if number.is_integer():
            hint = "int(...) converts a whole float; np.argmin returns an integer"
        elif _close(number, float(costs.min()), 1e-9):
            hint = "that is the lowest cost R + λD itself: return the index of its point, np.argmin"
        else:
            hint = f"{number!r} is no point's index: the points are numbered 0 to {len(costs) - 1}"
    else:
        kind, hint = _describe(got), "np.argmin returns one"
    raise _Failed(f"for {description} your function returned {kind}: expected the integer index of a point ({hint})")


# --------------------------------------------------------------------------- grading a notebook


def exercise_labels(notebook) -> dict[str, str]:
    """``{check name: exercise label}`` for the exercise directives of ``notebook`` (an
    ``nbformat`` notebook) whose text names a check, e.g. ``{"check_psnr": "ch01-ex-psnr"}``."""
    import re

    labels = {}
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for match in re.finditer(r"(`{3,}|:{3,})\{exercise\}.*?\n(.*?)\n\1", cell.source, re.S):
            label = re.search(r"^:label:\s*(\S+)", match.group(2), re.M)
            for check in re.findall(r"\b(check_\w+)\(", match.group(2)):
                if label:
                    labels.setdefault(check, label.group(1))
    return labels


def grade_notebook(path: str | Path, exercise: str | None = None, cell_timeout: float = 600) -> list[dict]:
    """Execute the notebook at ``path`` in a fresh kernel (its folder as working directory, at most
    ``cell_timeout`` seconds per cell; a cell that raises or runs out of time is recorded and the
    next one runs) and grade the checks its cells ran: one ``{exercise, check, passed, message}``
    per check, passed when any call of the check passed (the chapters' cells that show a wrong
    answer do not count against the learner), else with the message of its last call. A check
    that an exercise of the notebook names but that never ran is a failure. ``exercise`` keeps
    the entries whose exercise label or check name (with or without ``check_``) it equals.
    Needs ``nbformat``, ``nbclient`` and ``ipykernel``."""
    import tempfile

    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import DeadKernelError
    except ImportError as error:
        raise NicbookError(
            f"grading needs nbformat, nbclient and ipykernel ({error}): pip install nbclient ipykernel"
        ) from None
    path = Path(path)
    try:
        notebook = nbformat.read(path, as_version=4)
    except (OSError, UnicodeDecodeError) as error:
        raise NicbookError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    except Exception as error:  # nbformat raises JSON, schema and version errors of several types
        raise NicbookError(f"{path} is not a valid notebook: {_first_line(error)}") from None
    labels = exercise_labels(notebook)
    if exercise is not None and not _select([{"exercise": label, "check": check} for check, label in labels.items()]
                                            + [{"exercise": "", "check": name} for name in _CHECKS], exercise):
        raise NicbookError(f"no auto-checked exercise {exercise!r} in {path} (it has: {_names(labels.values())})")
    problems = []

    def note_timeout(cell, cell_index, execute_reply):
        if (execute_reply or {}).get("content", {}).get("ename") == "CellTimeoutError":
            problems.append(f"cell {cell_index + 1} ran past the time limit of {cell_timeout:g} s")

    with tempfile.TemporaryDirectory(prefix="nicbook-grade-") as scratch:
        log = Path(scratch) / "results.jsonl"
        log.touch()
        client = NotebookClient(
            notebook, timeout=cell_timeout, allow_errors=True, interrupt_on_timeout=True,
            error_on_timeout={"ename": "CellTimeoutError", "evalue": f"ran past {cell_timeout:g} s", "traceback": []},
            kernel_name="python3", resources={"metadata": {"path": str(path.parent.resolve())}},
            on_cell_executed=note_timeout,
        )
        try:
            client.execute(env={**os.environ, GRADING_LOG: str(log)})
        except DeadKernelError as error:  # grade what ran before
            problems.append(f"the kernel died: {_first_line(error)}")
        except Exception as error:  # no kernel could start (jupyter_client raises several types)
            raise NicbookError(f"could not run {path}: {type(error).__name__}: {_first_line(error)}") from None
        results = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    grades: dict[str, dict] = {}
    for result in results:
        check = result.get("check") or result["exercise"]
        if not grades.get(check, {}).get("passed"):  # a passing call stands; otherwise the last call
            grades[check] = {"exercise": labels.get(check, result["exercise"]), "check": check,
                             "passed": result["passed"], "message": result["message"]}
    for check, label in labels.items():
        if check not in grades:
            reason = problems[0] if problems else "no cell called it, or that cell raised an error before the call"
            message = f"{check} never ran: {reason}"
            grades[check] = {"exercise": label, "check": check, "passed": False, "message": message}
    entries = list(grades.values())
    if exercise is None:
        return entries
    chosen = _select(entries, exercise)
    if not chosen:
        ran = _names(entry["exercise"] for entry in entries)
        raise NicbookError(f"no check for {exercise!r} ran in {path} (these did: {ran})")
    return chosen


#: The names of the checks, which ``nicbook grade --exercise`` accepts.
_CHECKS = tuple(name for name in tuple(globals()) if name.startswith("check_"))


def _select(entries: list[dict], exercise: str) -> list[dict]:
    """The entries whose exercise label or check name (with or without ``check_``) is ``exercise``."""
    wanted = exercise.lower()
    return [
        entry for entry in entries
        if wanted in (entry["exercise"].lower(), entry["check"].lower(), entry["check"].lower().removeprefix("check_"))
    ]


def _names(labels) -> str:
    return ", ".join(sorted(labels)) or "none"


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
