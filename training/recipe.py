"""The zoo's training recipe, as one command: ``python training/recipe.py``.

A base model is trained at the middle λ of the ladder (quality 4) and then fine-tuned to every
quality, in two chains that run side by side (one per CPU core): 4 → 5 → 6 and 3 → 2 → 1. The
first link of each chain starts from the base, every later one from the previous link's weights,
so no fine-tune jumps by more than a factor of two in λ. Every run resumes from its checkpoint when the command is run
again, so the recipe can be spread over several sittings. Finished runs are exported into the
package with ``python -m nicbook export`` (see ``training/README.md``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nicbook.zoo import CONFIGURATIONS

BASE_QUALITY = 4
CHAINS = ((4, 5, 6), (3, 2, 1))
COMMON = ["--patch-size", "64", "--batch-size", "8", "--quantization", "mixed", "--no-progress"]


def train(out: Path, quality: int, steps: int, extra: list[str], threads: int) -> None:
    lmbda = CONFIGURATIONS["factorized"][quality]["lmbda"]
    command = [sys.executable, "-m", "nicbook", "train", "--out", str(out), "--lmbda", str(lmbda),
               "--steps", str(steps), "--threads", str(threads), *COMMON, *extra]  # fmt: skip
    print(" ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)


def run_chain(runs: Path, chain: tuple[int, ...], steps: int, threads: int) -> None:
    previous = runs / "factorized-base"
    for quality in chain:
        out = runs / f"factorized-q{quality}"
        extra = ["--init-from", str(previous / "checkpoint.pt"), "--lr-drop-at", str(steps * 4 // 5)]
        train(out, quality, steps, extra, threads)
        previous = out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of the runs")
    parser.add_argument("--base-steps", type=int, default=52_000)
    parser.add_argument("--tune-steps", type=int, default=3_000, help="steps of every fine-tune")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per chain")
    args = parser.parse_args()
    train(args.runs / "factorized-base", BASE_QUALITY, args.base_steps, [], 2 * args.threads)
    with ThreadPoolExecutor(len(CHAINS)) as pool:
        for done in [pool.submit(run_chain, args.runs, c, args.tune_steps, args.threads) for c in CHAINS]:
            done.result()


if __name__ == "__main__":
    main()
