"""nicbook.exercises: the checks accept a learner's own correct answer, name the problem in the
typical wrong ones, cannot be fooled by answers that only handle the cases shown (scalars, pasted
tables), stop an endless loop, print their verdict in scripts, and grade a notebook (``nicbook
grade``). The correct answers here are written the way a learner would write them, without the
package's own implementations, so a check that compares with a wrong reference fails."""

from __future__ import annotations

import heapq
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from nicbook import cli, exercises


def learner_psnr(a, b):
    error = a.astype(np.float64) - b.astype(np.float64)
    mse = np.mean(error**2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def test_psnr_check():
    assert exercises.check_psnr(learner_psnr)
    for mse in (lambda a, b: np.mean((a - b) ** 2), lambda a, b: np.mean((a - b).astype(np.float64) ** 2)):
        wrapped = exercises.check_psnr(lambda a, b: 10 * np.log10(255**2 / mse(a, b)))  # uint8 a - b wraps
        assert not wrapped and "uint8 arithmetic wraps around" in wrapped.message and "float" in wrapped.message
    unit_peak = exercises.check_psnr(lambda a, b: learner_psnr(a, b) - 20 * math.log10(255))
    assert not unit_peak and "dB, got" in unit_peak.message and "peak 255" in unit_peak.message
    amplitude = exercises.check_psnr(lambda a, b: 2 * learner_psnr(a, b))  # 20·log10 of a power ratio
    assert not amplitude and "10·log10" in amplitude.message
    raising = exercises.check_psnr(lambda a, b: 1 / 0)
    assert not raising and "ZeroDivisionError" in raising.message
    per_channel = exercises.check_psnr(lambda a, b: np.array([learner_psnr(a[..., c], b[..., c]) for c in range(3)]))
    assert not per_channel and "returned an array of shape (3,): expected one number" in per_channel.message
    no_infinity = exercises.check_psnr(lambda a, b: 10 * np.log10(255**2 / max(np.mean((a / 1.0 - b) ** 2), 1e-10)))
    assert not no_infinity and "identical images expected inf" in no_infinity.message


def learner_information(p):
    with np.errstate(divide="ignore"):
        return -np.log2(np.asarray(p, dtype=float))


def test_information_content_check_needs_arrays_and_edge_cases():
    assert exercises.check_information_content(learner_information)
    for scalar in (lambda p: -math.log2(p), lambda p: math.log2(1 / p)):  # right for the single numbers of a book
        scalar_only = exercises.check_information_content(scalar)
        assert not scalar_only and "raised TypeError" in scalar_only.message
        assert "must accept whole arrays, not only single numbers" in scalar_only.message
        assert "use np.log2" in scalar_only.message
    branching = exercises.check_information_content(lambda p: math.inf if p == 0 else -np.log2(p))
    assert not branching and "np.where" in branching.message
    for clip in (lambda p: np.clip(p, 1e-12, 1), lambda p: np.maximum(p, 1e-12)):
        clipped = exercises.check_information_content(lambda p: -np.log2(clip(p)))
        assert not clipped and "for p=0 (in an array with p = 0 and p = 1)" in clipped.message
        assert "expected inf bits, got 39.8" in clipped.message
        assert "is p clipped, or a small ε added?" in clipped.message
    nudged = exercises.check_information_content(lambda p: -np.log2(p + 1e-12))
    assert not nudged and "for p=1e-09" in nudged.message and "a small ε added?" in nudged.message
    with np.errstate(divide="ignore"):
        zero = exercises.check_information_content(lambda p: np.where(p > 0, -np.log2(p), 0.0))
    assert not zero and "got 0 (0 · log 0 = 0 is a convention of entropy sums" in zero.message
    flat = exercises.check_information_content(lambda p: float(np.sum(learner_information(p))))
    assert not flat and "expected an array of the same shape" in flat.message
    natural = exercises.check_information_content(lambda p: -np.log(p))
    assert not natural and "base 2" in natural.message and "clipped" not in natural.message
    signless = exercises.check_information_content(lambda p: np.log2(p))
    assert not signless and "sign" in signless.message


def test_cross_entropy_check():
    def learner_cross_entropy(p, q):
        return float(sum(-pi * math.log2(qi) for pi, qi in zip(p, q) if pi > 0))

    assert exercises.check_cross_entropy(learner_cross_entropy)
    swapped = exercises.check_cross_entropy(lambda p, q: learner_cross_entropy(q, p))
    assert not swapped and "H(q, p)" in swapped.message
    nats = exercises.check_cross_entropy(lambda p, q: learner_cross_entropy(p, q) * math.log(2))
    assert not nats and "nats" in nats.message
    with np.errstate(divide="ignore", invalid="ignore"):
        unmasked = exercises.check_cross_entropy(lambda p, q: -np.sum(p * np.log2(q)))  # 0 · log 0 is nan
    assert not unmasked and "p = 0 contribute 0" in unmasked.message


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
    assert not transposed and transposed.message.startswith("4×4: position 1 should be (0, 1), got (1, 0)")
    assert "swapped" in transposed.message
    row_major = exercises.check_zigzag(lambda n: [(row, col) for row in range(n) for col in range(n)])
    assert not row_major and row_major.message == "4×4: position 2 should be (1, 0), got (0, 2)"


def test_zigzag_check_names_wrong_shapes():
    short = exercises.check_zigzag(lambda n: learner_zigzag(n)[: n * n // 2])
    assert short.message == "for n=4 your function returned a list of 8 positions: expected n² = 16 (row, col) pairs"
    flat = exercises.check_zigzag(lambda n: [row * n + col for row, col in learner_zigzag(n)])
    assert not flat and "returned 16 single numbers: expected n² = 16 (row, col) pairs" in flat.message
    table = exercises.check_zigzag(lambda n: np.zeros((n, n), int))
    assert not table and "shape (4, 4), a table?" in table.message
    assert "expected a list" in exercises.check_zigzag(lambda n: None).message


def test_zigzag_check_draws_hidden_sizes_a_pasted_table_cannot_meet():
    tables = {n: learner_zigzag(n) for n in (4, 8)}
    for paste in (lambda n: tables[n], lambda n: tables.get(n, learner_zigzag(n)[::-1])):
        pasted = exercises.check_zigzag(paste)
        assert not pasted and "(a hidden size)" in pasted.message
        assert "the sizes shown pass, this one does not" in pasted.message and "pasted" in pasted.message
    assert "raised KeyError" in exercises.check_zigzag(lambda n: tables[n]).message
    assert "pasted" not in exercises.check_zigzag(lambda n: learner_zigzag(n)[::-1]).message
    seen = set()

    def spy(n):
        seen.add(n)
        return learner_zigzag(n)

    for _ in range(8):
        assert exercises.check_zigzag(spy)
    assert {4, 8} < seen <= set(range(2, 13)) and len(seen) > 4  # fresh hidden sizes at every call


def test_quantizer_check():
    assert exercises.check_quantizer(lambda x, step, rounding: np.sign(x) * np.floor(np.abs(x) / step + rounding))
    plain = exercises.check_quantizer(lambda x, step, rounding: np.round(x / step).astype(int))
    assert not plain and "x = -0.5 should map to -1, got 0" in plain.message and "halves" in plain.message
    truncating = exercises.check_quantizer(lambda x, step, rounding: np.trunc(x / step + np.sign(x) * 0.5).astype(int))
    assert not truncating and "rounding 0.333" in truncating.message
    assert "rounding argument r is ignored" in truncating.message
    scalar = exercises.check_quantizer(lambda x, step, r: int(np.sign(x[0]) * np.floor(abs(x[0]) / step + r)))
    assert not scalar and "expected" in scalar.message and "one per sample" in scalar.message


def learner_klt(blocks):
    """Eigenvectors of the covariance matrix, largest eigenvalue first, as rows."""
    vectors = blocks.reshape(len(blocks), -1)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(vectors, rowvar=False))
    return eigenvectors[:, np.argsort(eigenvalues)[::-1]].T


def test_klt_check_tells_unsorted_from_transposed():
    assert exercises.check_klt_basis(learner_klt)
    assert exercises.check_klt_basis(lambda blocks: -learner_klt(blocks))  # signs are free
    unsorted = exercises.check_klt_basis(lambda blocks: np.linalg.eigh(np.cov(blocks, rowvar=False))[1].T)
    assert not unsorted and "not sorted by decreasing variance" in unsorted.message
    assert "columns" not in unsorted.message
    columns = exercises.check_klt_basis(lambda blocks: learner_klt(blocks).T)  # eigenvectors as columns
    assert not columns and "columns" in columns.message and "transpose" in columns.message
    assert "sorted" not in columns.message
    assert "orthonormal" in exercises.check_klt_basis(lambda blocks: 2 * learner_klt(blocks)).message
    values = exercises.check_klt_basis(lambda blocks: np.linalg.eigh(np.cov(blocks, rowvar=False))[0])
    assert not values and "eigenvalues?" in values.message


def test_klt_check_names_each_mistake_apart():
    raw = exercises.check_klt_basis(lambda blocks: np.linalg.eigh(np.cov(blocks, rowvar=False))[1])
    assert not raw and "columns" in raw.message and "ascending order" in raw.message
    uncentred = exercises.check_klt_basis(lambda blocks: np.linalg.eigh(blocks.T @ blocks)[1][:, ::-1].T)
    assert not uncentred and "is the mean removed" in uncentred.message and "transpose" not in uncentred.message
    samples = exercises.check_klt_basis(lambda blocks: np.cov(blocks))  # (N, N): rows taken as the variables
    assert not samples and "shape (2000, 2000)" in samples.message and "rowvar=False" in samples.message
    covariance = exercises.check_klt_basis(lambda blocks: np.cov(blocks, rowvar=False))
    assert not covariance and "not orthonormal" in covariance.message
    assert "covariance matrix itself" in covariance.message
    assert "covariance" not in exercises.check_klt_basis(lambda blocks: 2 * learner_klt(blocks)).message


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
    assert not shared and "independent" in shared.message
    as_numpy = exercises.check_uniform_noise(lambda y: y.detach().numpy() + np.random.uniform(-0.5, 0.5, y.shape))
    assert not as_numpy and "expected a torch tensor" in as_numpy.message


def test_rate_check_names_sum_versus_mean():
    assert exercises.check_rate(lambda p, n: float(-torch.log2(p).sum() / n))
    nats = exercises.check_rate(lambda p, n: float(-torch.log(p).sum() / n))
    assert not nats and "nats" in nats.message
    mean = exercises.check_rate(lambda p, n: float(-torch.log2(p).mean()))  # per latent, not per pixel
    assert not mean and "mean over latents" in mean.message
    total = exercises.check_rate(lambda p, n: float(-torch.log2(p).sum()))
    assert not total and "divide by num_pixels" in total.message
    per_image = exercises.check_rate(lambda p, n: float(-torch.log2(p).sum(dim=(1, 2, 3)).mean() / n))
    assert not per_image and "(2, 16, 8, 8)" in per_image.message and "batch size twice" in per_image.message
    per_channel = exercises.check_rate(lambda p, n: -torch.log2(p).sum(dim=(0, 2, 3)) / n)
    assert not per_channel and "expected one number" in per_channel.message
    scalar = exercises.check_rate(lambda p, n: -sum(math.log2(q) for q in p) / n)  # iterates the batch, not numbers
    assert not scalar and "must accept whole tensors" in scalar.message and "torch.log2" in scalar.message
    branching = exercises.check_rate(lambda p, n: 0.0 if p == 1 else float(-torch.log2(p).sum() / n))
    assert not branching and "torch.where" in branching.message


def test_operating_point_check_names_a_swapped_lagrangian_and_refuses_floats():
    def cheapest(r, d, lmbda):
        return int(np.argmin(r + lmbda * d))

    assert exercises.check_operating_point(lambda r, d, lmbda: min(range(len(r)), key=lambda i: r[i] + lmbda * d[i]))
    assert exercises.check_operating_point(lambda r, d, lmbda: np.argmin(r + lmbda * d))  # a NumPy integer
    swapped = exercises.check_operating_point(lambda r, d, lmbda: int(np.argmin(d + lmbda * r)))
    assert not swapped and "D + λ·R" in swapped.message
    assert not exercises.check_operating_point(lambda r, d, lmbda: 99)
    assert not exercises.check_operating_point(lambda r, d, lmbda: "first")
    as_float = exercises.check_operating_point(lambda r, d, lmbda: float(cheapest(r, d, lmbda)))
    assert not as_float and "returned the float" in as_float.message and "integer index" in as_float.message
    assert "int(...) converts a whole float" in as_float.message
    between = exercises.check_operating_point(lambda r, d, lmbda: cheapest(r, d, lmbda) + 0.7)
    assert not between and "is no point's index: the points are numbered 0 to" in between.message
    cost = exercises.check_operating_point(lambda r, d, lmbda: float(np.min(r + lmbda * d)))
    assert not cost and "the lowest cost R + λD itself" in cost.message
    listed = exercises.check_operating_point(lambda r, d, lmbda: [cheapest(r, d, lmbda)])
    assert not listed and "returned a list of 1 item: expected the integer index" in listed.message
    assert "returned bool True" in exercises.check_operating_point(lambda r, d, lmbda: True).message


def test_an_endless_loop_is_stopped_by_the_time_limit():
    def endless(a, b):
        while True:
            try:
                time.sleep(0.01)
            except Exception:  # a learner's catch-all does not swallow the stop
                pass

    handler = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    stopped = exercises.check_psnr(endless, time_limit=0.3)
    assert time.monotonic() - start < 5
    assert not stopped and "time limit of 0.3 s" in stopped.message and "loop that never ends" in stopped.message
    assert signal.getsignal(signal.SIGALRM) is handler and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert exercises.check_psnr(learner_psnr, time_limit=5)  # the limit is per check and leaves nothing behind
    assert exercises.check_psnr(learner_psnr, time_limit=None)


def test_the_time_limit_leaves_an_outer_timer_running():
    def outer(signum, frame):
        raise AssertionError("the outer timer fired during the check")

    previous = signal.signal(signal.SIGALRM, outer)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        assert not exercises.check_zigzag(lambda n: time.sleep(60), time_limit=0.2)
        assert signal.getsignal(signal.SIGALRM) is outer and 25 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_value_instead_of_a_function_is_named():
    called = exercises.check_psnr(learner_psnr(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.uint8)))
    assert not called and "pass the function itself" in called.message


def test_result_renders_in_notebooks():
    passed = exercises.check_information_content(learner_information)
    assert str(passed).startswith("information content: passed") and passed.check == "check_information_content"
    failed = exercises.check_information_content(lambda p: -np.log(p))
    assert str(failed).startswith("information content: not yet")
    assert passed._repr_markdown_().startswith("✅") and failed._repr_markdown_().startswith("❌")


def test_the_verdict_prints_in_scripts_only(monkeypatch, capsys):
    script = "from nicbook.exercises import check_operating_point\nresult = check_operating_point(lambda r, d, l: 0.5)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.startswith("operating point for λ: not yet: for case 1") and out.count("\n") == 1
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)  # an interactive shell shows the returned result
    exercises.check_operating_point(lambda r, d, lmbda: 0)
    assert capsys.readouterr().out == ""


def test_checks_record_their_results_for_grading(monkeypatch, tmp_path):
    log = tmp_path / "results.jsonl"
    monkeypatch.setenv(exercises.GRADING_LOG, str(log))
    exercises.check_zigzag(learner_zigzag)
    exercises.check_operating_point(lambda r, d, lmbda: 0.0)
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["check"] == "check_zigzag" and first["passed"] and first["exercise"] == "zig-zag"
    assert second["check"] == "check_operating_point" and not second["passed"]


# --------------------------------------------------------------------------- nicbook grade


def exercise_cell(label: str, check: str) -> str:
    return f"````{{exercise}} An exercise\n:label: {label}\nWrite it, then run `nicbook.exercises.{check}(mine)`.\n````"


def test_grade_refuses_a_missing_or_broken_notebook_in_one_line(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path / "missing.ipynb")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nicbook grade: error: cannot read") and err.count("\n") == 1
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert cli.main(["grade", str(broken), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nicbook grade: error:") and "not a valid notebook" in err and err.count("\n") == 1


def test_exercise_labels_come_from_the_exercise_directives():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(exercise_cell("ch01-ex-psnr", "check_psnr")),
        nbformat.v4.new_markdown_cell(exercise_cell("ch01-ex-raw", "none") + "\n\n" + exercise_cell("b", "check_rate")),
        nbformat.v4.new_code_cell("check_zigzag(my_zigzag)"),
    ])
    assert exercises.exercise_labels(notebook) == {"check_psnr": "ch01-ex-psnr", "check_rate": "b"}


@pytest.mark.slow
def test_grade_runs_a_notebook_and_reports_each_check(tmp_path, capsys):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(exercise_cell("ex-psnr", "check_psnr")),
        nbformat.v4.new_code_cell("import math\nimport numpy as np\nfrom nicbook.exercises import *"),
        nbformat.v4.new_code_cell(
            "def my_psnr(a, b):\n    mse = np.mean((a.astype(float) - b) ** 2)\n"
            "    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)\n\ncheck_psnr(my_psnr)"
        ),
        nbformat.v4.new_markdown_cell(exercise_cell("ex-information", "check_information_content")),
        nbformat.v4.new_code_cell("check_information_content(lambda p: math.log2(1 / p))"),
        nbformat.v4.new_markdown_cell(exercise_cell("ex-quantizer", "check_quantizer")),
        nbformat.v4.new_code_cell("def my_quantize(x, step, rounding):\n    while True:\n        pass\n\n"
                                  "check_quantizer(my_quantize, time_limit=1)"),
        nbformat.v4.new_code_cell("raise RuntimeError('a learner cell that fails')"),
        nbformat.v4.new_markdown_cell(exercise_cell("ex-rate", "check_rate")),
        nbformat.v4.new_code_cell("import time\ntime.sleep(600)\ncheck_rate(lambda p, n: 0.0)"),
    ])
    path = tmp_path / "learner.ipynb"
    nbformat.write(notebook, path)
    assert cli.main(["grade", str(path), "--json", "--timeout", "10"]) == 1
    verdict = {entry["exercise"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert list(verdict) == ["ex-psnr", "ex-information", "ex-quantizer", "ex-rate"]
    assert verdict["ex-psnr"]["passed"] and verdict["ex-psnr"]["check"] == "check_psnr"
    assert not verdict["ex-information"]["passed"] and "not only single numbers" in verdict["ex-information"]["message"]
    assert not verdict["ex-quantizer"]["passed"] and "time limit of 1 s" in verdict["ex-quantizer"]["message"]
    assert not verdict["ex-rate"]["passed"] and "never ran" in verdict["ex-rate"]["message"]
    assert "cell 10 ran past the time limit of 10 s" in verdict["ex-rate"]["message"]
    del notebook.cells[-1]
    nbformat.write(notebook, path)
    assert cli.main(["grade", str(path), "--exercise", "ex-psnr"]) == 0
    assert capsys.readouterr().out.startswith("passed   ex-psnr: all 5 cases match")
    assert cli.main(["grade", str(path), "--exercise", "check_quantizer"]) == 1
    assert "time limit" in capsys.readouterr().out


def test_grade_refuses_an_unknown_exercise_before_running_anything(tmp_path, capsys):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(exercise_cell("ex-psnr", "check_psnr")),
        nbformat.v4.new_code_cell("raise SystemExit('this notebook must not run')"),
    ])
    path = tmp_path / "learner.ipynb"
    nbformat.write(notebook, path)
    assert cli.main(["grade", str(path), "--exercise", "no-such-exercise"]) == 2
    err = capsys.readouterr().err
    assert err == f"nicbook grade: error: no auto-checked exercise 'no-such-exercise' in {path} (it has: ex-psnr)\n"


def _bits_by_erfc(symbols, scales):
    """A correct answer written another way: upper-tail erfc of |k|, where nothing cancels."""
    from scipy.special import erfc

    k, s = np.abs(np.asarray(symbols, dtype=float)), np.asarray(scales, dtype=float) * np.sqrt(2)
    return -np.log2(0.5 * (erfc((k - 0.5) / s) - erfc((k + 0.5) / s)))


def test_gaussian_bits_check_passes_a_correct_answer_that_agrees_with_the_coding_tables():
    from nicbook.nn.entropy_models import gaussian_table_pmfs

    assert exercises.check_gaussian_bits(_bits_by_erfc)
    # the answer it accepts is the information under the pmfs the hyperprior's tables are built from
    (pmf,), (first,) = gaussian_table_pmfs([1.7])
    symbols = np.arange(first, first + len(pmf))
    np.testing.assert_allclose(_bits_by_erfc(symbols, np.full(len(pmf), 1.7)), -np.log2(pmf), rtol=1e-9)


def test_gaussian_bits_check_names_the_usual_mistakes():
    from scipy.special import ndtr

    def as_written(k, s):
        return -np.log2(ndtr((k + 0.5) / s) - ndtr((k - 0.5) / s))

    with np.errstate(divide="ignore"):
        verdict = exercises.check_gaussian_bits(as_written)
    assert not verdict and "upper tail" in verdict.message and "P(−|k|)" in verdict.message

    natural = exercises.check_gaussian_bits(lambda k, s: _bits_by_erfc(k, s) * math.log(2))
    assert not natural and "base 2" in natural.message

    def density(k, s):
        return -np.log2(np.exp(-0.5 * (np.asarray(k) / s) ** 2) / (s * np.sqrt(2 * np.pi)))

    assert "mass of the bin" in exercises.check_gaussian_bits(density).message

    def scalar_only(k, s):
        return -math.log2(0.5 * (math.erfc((abs(k) - 0.5) / (s * 2**0.5)) - math.erfc((abs(k) + 0.5) / (s * 2**0.5))))

    assert "whole arrays" in exercises.check_gaussian_bits(scalar_only).message
    total = exercises.check_gaussian_bits(lambda k, s: float(np.sum(_bits_by_erfc(k, s))))
    assert not total and "expected an array of shape" in total.message
