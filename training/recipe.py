"""The zoo's training recipe, as one command: ``python training/recipe.py``.

A base model is trained at a middle λ of the ladder (quality 4) and then fine-tuned to every
quality, in two chains that run side by side (one per CPU core): 4 → 5 → 6 → 7 and 3 → 2 → 1 → 0.
The first link of each chain starts from the base, every later one from the previous link's
weights, so no fine-tune jumps by more than a factor of two in λ. Each chain then polishes its
models at a tenth of the learning rate on 128×128 patches (two per batch: as many pixels per step
as before), which suits full-size photos better than the small patches that made the early steps
cheap; a polish round ends at a tenth of its learning rate, and each further round restarts from
the last one at the full polish rate (a warm restart). Every run resumes from its checkpoint when
the command is run again, so the recipe can be spread over several sittings. Last, the upper
half of the ladder (:data:`LONG_TUNED`), where more training still lowered the loss on held-out
photos, gets a long fine-tune at the full learning rate on small patches, two at a time, and the
top rung (:data:`TOP_QUALITY`, twice quality 7's λ) is fine-tuned from quality 7's long run and
then gets a long fine-tune of its own. The higher qualities, the least trained for what they are
asked to do, get further, shorter long rounds (:data:`LONG_ROUNDS`), each from the one before,
two at a time. The last run of each quality (``runs/factorized-qN-polish2``, or
``runs/factorized-qN-longR`` for the long-tuned ones, R its number of long rounds when above one)
is exported into the package with ``python -m nicbook export`` (see ``training/README.md``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from nicbook.zoo import CONFIGURATIONS

BASE_QUALITY = 4
CHAINS = ((4, 5, 6, 7), (3, 2, 1, 0))
COMMON = ["--quantization", "mixed", "--no-progress"]
SMALL_PATCHES = ["--patch-size", "64", "--batch-size", "8"]
POLISH = ["--patch-size", "128", "--batch-size", "2", "--lr", "1e-5"]  # 2 × 128² = 8 × 64² pixels a step
#: Qualities that get a long fine-tune after their polish rounds.
LONG_TUNED = (4, 5, 6, 7)
#: The top rung of the ladder, fine-tuned from the long run of the quality below it.
TOP_QUALITY = 8
#: Long rounds of each long-tuned quality (the top rung included); each later round starts from
#: the one before, and the run of the last one ships.
LONG_ROUNDS = {4: 1, 5: 2, 6: 2, 7: 4, 8: 4}


def train(out: Path, quality: int, steps: int, extra: list[str], threads: int) -> None:
    lmbda = CONFIGURATIONS["factorized"][quality]["lmbda"]
    command = [sys.executable, "-m", "nicbook", "train", "--out", str(out), "--lmbda", str(lmbda),
               "--steps", str(steps), "--threads", str(threads), *COMMON, *extra]  # fmt: skip
    print(" ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)


def fine_tune(out: Path, start: Path, quality: int, steps: int, extra: list[str], threads: int) -> None:
    """Train ``out`` from the weights of ``start``; the last fifth at a tenth of the learning rate."""
    extra = [*extra, "--init-from", str(start / "checkpoint.pt"), "--lr-drop-at", str(steps * 4 // 5)]
    train(out, quality, steps, extra, threads)


def run_after(runs: Path, quality: int, polish_rounds: int) -> Path:
    """The run of a quality after ``polish_rounds`` polish rounds (none: its fine-tune)."""
    suffix = {0: "", 1: "-polish"}.get(polish_rounds, f"-polish{polish_rounds}")
    return runs / f"factorized-q{quality}{suffix}"


def long_run(runs: Path, quality: int, round_: int = 1) -> Path:
    """The ``round_``-th long fine-tune of a quality of :data:`LONG_TUNED` or the top rung."""
    return runs / f"factorized-q{quality}-long{round_ if round_ > 1 else ''}"


def run_chain(runs: Path, chain: tuple[int, ...], steps: int, polish_steps: int, rounds: int,
              threads: int) -> None:  # fmt: skip
    tuned = [run_after(runs, quality, 0) for quality in chain]
    for quality, out, start in zip(chain, tuned, [runs / "factorized-base", *tuned]):
        fine_tune(out, start, quality, steps, SMALL_PATCHES, threads)
    for round_ in range(1, rounds + 1):
        for quality in chain:
            start, out = run_after(runs, quality, round_ - 1), run_after(runs, quality, round_)
            fine_tune(out, start, quality, polish_steps, POLISH, threads)


def side_by_side(runs: list[Callable[[], None]]) -> None:
    """Run ``runs`` two at a time, one per CPU core, and re-raise the first failure."""
    with ThreadPoolExecutor(len(CHAINS)) as pool:
        for done in [pool.submit(run) for run in runs]:
            done.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of the runs")
    parser.add_argument("--base-steps", type=int, default=52_000)
    parser.add_argument("--tune-steps", type=int, default=3_000, help="steps of every fine-tune")
    parser.add_argument("--polish-steps", type=int, default=5_000, help="steps of every polish round")
    parser.add_argument("--polish-rounds", type=int, default=2, help="polish rounds per quality")
    parser.add_argument("--long-steps", type=int, default=12_000, help="steps of every long fine-tune")
    parser.add_argument("--top-steps", type=int, default=6_000, help="steps of the top rung's fine-tune")
    parser.add_argument("--later-long-steps", type=int, default=8_000,
                        help="steps of every long round after the first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per chain")
    args = parser.parse_args()
    train(args.runs / "factorized-base", BASE_QUALITY, args.base_steps, SMALL_PATCHES, 2 * args.threads)
    side_by_side([partial(run_chain, args.runs, chain, args.tune_steps, args.polish_steps,
                          args.polish_rounds, args.threads) for chain in CHAINS])  # fmt: skip
    side_by_side([partial(fine_tune, long_run(args.runs, quality),
                          run_after(args.runs, quality, args.polish_rounds), quality, args.long_steps,
                          SMALL_PATCHES, args.threads) for quality in LONG_TUNED])  # fmt: skip
    top, below = run_after(args.runs, TOP_QUALITY, 0), long_run(args.runs, TOP_QUALITY - 1)
    fine_tune(top, below, TOP_QUALITY, args.top_steps, SMALL_PATCHES, args.threads)
    # The top rung alone: both chains' cores serve it.
    fine_tune(long_run(args.runs, TOP_QUALITY), top, TOP_QUALITY, args.long_steps, SMALL_PATCHES,
              2 * args.threads)  # fmt: skip
    for round_ in range(2, max(LONG_ROUNDS.values()) + 1):
        side_by_side([partial(fine_tune, long_run(args.runs, quality, round_),
                              long_run(args.runs, quality, round_ - 1), quality, args.later_long_steps,
                              SMALL_PATCHES, args.threads)
                      for quality, rounds in LONG_ROUNDS.items() if rounds >= round_])  # fmt: skip


if __name__ == "__main__":
    main()
