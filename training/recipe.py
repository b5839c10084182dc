"""The zoo's training recipe, as one command: ``python training/recipe.py``.

A base model is trained at a middle λ of the ladder (quality 4) and fine-tuned along the ladder in
two chains that run side by side (one per CPU core): 4 → 5 → 6 → 7 and 3 → 2 → 1 → 0. The first
link of each chain starts from the base, every later one from the previous link's weights, so no
fine-tune jumps by more than a factor of two in λ. The lower half of the ladder is then polished
at a tenth of the learning rate on 128×128 patches (two per batch: as many pixels per step as
before), which suits full-size photos better than the small patches that made the early steps
cheap; a polish round ends at a tenth of its learning rate, and each further round restarts from
the last one at the full polish rate (a warm restart). Quality 7 is polished the same way and
gets a long fine-tune, from which the top rung (:data:`TOP_QUALITY`, twice quality 7's λ) is
fine-tuned; the top rung then gets long rounds of its own (:data:`TOP_ROUNDS`), the last on the
large patches.

A model fine-tuned *upward* keeps the latent channels its start used: a channel that a low-rate
model switched off has a density so narrow that any change to it costs more bits than it saves.
So the upper half of the ladder (:data:`DESCENDED`) is fine-tuned *downward* from the top rung,
which has learned to use more channels, two at a time; then the upper half and the top rung are
polished once. Last, the hyperprior models (:data:`HYPERPRIORS`, at :data:`HYPER_QUALITIES`) start
from the analysis and synthesis transforms of the shipped factorized run of their quality
(``--transforms-from``), which stay frozen while their hyper path learns (``--freeze-transforms-until``),
side by side, on 128×128 patches (the hyper-synthesis needs 2×2 hyper-latents), the last part at
a tenth of the learning rate; then once more on 256×256 patches (:data:`HYPER_LARGE`), still on
frozen transforms: on small patches every hyper-latent lies at a border, and the hyper path learned
there predicts poorly inside full-size photos (15 % more bits on Kodak than after this stage).
Last, the scale hyperprior's ladder (:data:`HYPER_LADDER`) moves that trained hyper
path onto the frozen transforms of the factorized model of each quality (``--init-from`` and
``--transforms-from`` together) and trains it there on large patches for :data:`LADDER_STEPS`, two
at a time (quality 4 too, on its own transforms); a frozen transform is exactly the factorized
model's, so the zoo file of such a model names the factorized file instead of repeating it. Each
rung's hyper path then trains once more, alone, on the latents of its frozen transforms
(``--hyper-path-only``, :data:`HYPER_PATH_STEPS`): the photos are analysed once and every step
prices crops of their rounded latents, so a step costs a fraction of a full one and covers
sixteen 256×256 crops; this is what the scale hyperprior ships. Every run resumes from its
checkpoint when the command is run again, so the recipe can be spread over several sittings.
The run each quality ships (:func:`shipped_run`) is exported into the package with ``python -m
nicbook export``; the recipe ends by printing those commands (see ``training/README.md``).
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
LARGE_PATCHES = ["--patch-size", "128", "--batch-size", "2"]  # 2 × 128² = 8 × 64² pixels a step
POLISH = [*LARGE_PATCHES, "--lr", "1e-5"]
#: Qualities polished after their chain: the lower half, which ships its last polish round, and
#: the quality below the top rung, whose long fine-tune leads to the top rung.
POLISHED = (0, 1, 2, 3, 7)
#: The top rung of the ladder, fine-tuned from the long run of the quality below it.
TOP_QUALITY = 8
#: Long rounds of the top rung, each from the one before; the last one runs on the large patches.
TOP_ROUNDS = 5
#: Qualities fine-tuned down from the top rung's last long round; they and the top rung are then
#: polished once.
DESCENDED = (7, 6, 5, 4)
#: The hyperprior architectures and the qualities they are trained at, from the factorized family.
HYPERPRIORS = ("hyperprior", "mean-scale")
HYPER_QUALITIES = (4,)
HYPER_PATCHES = ["--patch-size", "128", "--batch-size", "4"]
#: Steps of each architecture's hyperprior run and the step from which it trains at a tenth of the
#: learning rate (the mean-scale model's steps cost more), and that learning rate (the hyper path
#: starts from scratch, so higher than the fine-tunes').
HYPER_STEPS = {"hyperprior": (4_500, 3_000), "mean-scale": (3_500, 2_100)}
HYPER_LR = "5e-4"
#: The hyperprior runs' second stage, on large patches: steps, the step of the tenfold drop, the
#: learning rate and the patches.
HYPER_LARGE = (3_000, 2_200)
HYPER_LARGE_LR = "2e-4"
HYPER_LARGE_PATCHES = ["--patch-size", "256", "--batch-size", "2"]
#: The scale hyperprior's ladder, each quality started from the hyper path of quality
#: :data:`BASE_QUALITY`'s large-patch run; their steps and the step of the tenfold drop. Qualities
#: 1 and 3 are left out: the wheel that carries all shipped weights must stay under PyPI's 100 MB.
HYPER_LADDER = (0, 2, 4, 5, 6, 7, 8)
LADDER_STEPS = (1_600, 1_200)
#: The last stage of every rung of the ladder: its hyper path alone on the latents of its frozen
#: transforms, from the ladder run; steps, the step of the tenfold drop, learning rate and crops.
HYPER_PATH_STEPS = (3_500, 2_800)
HYPER_PATH_LR = "5e-4"
HYPER_PATH_CROPS = ["--patch-size", "256", "--batch-size", "16"]


def train(out: Path, quality: int, steps: int, extra: list[str], threads: int, architecture: str = "factorized") -> None:
    lmbda = CONFIGURATIONS[architecture][quality]["lmbda"]
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
    """The ``round_``-th long fine-tune of a quality."""
    return runs / f"factorized-q{quality}-long{round_ if round_ > 1 else ''}"


def descent(runs: Path, quality: int, polished: bool = False) -> Path:
    """The fine-tune of a quality of :data:`DESCENDED` down from the top rung (or its polish)."""
    return runs / f"factorized-q{quality}-down{'-polish' if polished else ''}"


def shipped_run(runs: Path, quality: int, polish_rounds: int = 2) -> Path:
    """The run whose model the zoo ships at ``quality``."""
    if quality == TOP_QUALITY:
        return run_after(runs, quality, 1)
    if quality in DESCENDED:
        return descent(runs, quality, polished=True)
    return run_after(runs, quality, polish_rounds)


def run_chain(runs: Path, chain: tuple[int, ...], steps: int, polish_steps: int, rounds: int,
              threads: int) -> None:  # fmt: skip
    tuned = [run_after(runs, quality, 0) for quality in chain]
    for quality, out, start in zip(chain, tuned, [runs / "factorized-base", *tuned]):
        fine_tune(out, start, quality, steps, SMALL_PATCHES, threads)
    for round_ in range(1, rounds + 1):
        for quality in [quality for quality in chain if quality in POLISHED]:
            start, out = run_after(runs, quality, round_ - 1), run_after(runs, quality, round_)
            fine_tune(out, start, quality, polish_steps, POLISH, threads)


def hyperprior(runs: Path, architecture: str, quality: int, steps: int, drop_at: int, threads: int,
               polish_rounds: int) -> None:  # fmt: skip
    """Train ``architecture``'s hyper path at ``quality`` on the frozen transforms of the shipped factorized run,
    on small patches, then on large ones."""
    start = shipped_run(runs, quality, polish_rounds) / "checkpoint.pt"
    extra = [*HYPER_PATCHES, "--architecture", architecture, "--transforms-from", str(start), "--lr", HYPER_LR,
             "--freeze-transforms-until", str(steps), "--lr-drop-at", str(drop_at)]  # fmt: skip
    train(runs / f"{architecture}-q{quality}", quality, steps, extra, threads, architecture)
    steps, drop_at = HYPER_LARGE
    extra = [*HYPER_LARGE_PATCHES, "--architecture", architecture, "--lr", HYPER_LARGE_LR,
             "--init-from", str(runs / f"{architecture}-q{quality}" / "checkpoint.pt"),
             "--freeze-transforms-until", str(steps), "--lr-drop-at", str(drop_at)]  # fmt: skip
    train(large_hyperprior_run(runs, architecture, quality), quality, steps, extra, threads, architecture)


def hyperprior_rung(runs: Path, quality: int, threads: int, polish_rounds: int) -> None:
    """Train the scale hyperprior at ``quality``: quality :data:`BASE_QUALITY`'s hyper path on the
    frozen transforms of the shipped factorized run of ``quality``, on large patches."""
    steps, drop_at = LADDER_STEPS
    extra = [*HYPER_LARGE_PATCHES, "--architecture", "hyperprior", "--lr", HYPER_LARGE_LR,
             "--init-from", str(large_hyperprior_run(runs, "hyperprior", BASE_QUALITY) / "checkpoint.pt"),
             "--transforms-from", str(shipped_run(runs, quality, polish_rounds) / "checkpoint.pt"),
             "--freeze-transforms-until", str(steps), "--lr-drop-at", str(drop_at)]  # fmt: skip
    train(ladder_run(runs, quality), quality, steps, extra, threads, "hyperprior")


def hyper_path_rung(runs: Path, quality: int, threads: int) -> None:
    """Train the hyper path of the scale hyperprior at ``quality`` alone, on its frozen transforms'
    latents, from its ladder run."""
    steps, drop_at = HYPER_PATH_STEPS
    extra = [*HYPER_PATH_CROPS, "--architecture", "hyperprior", "--hyper-path-only", "--lr", HYPER_PATH_LR,
             "--init-from", str(ladder_run(runs, quality) / "checkpoint.pt"), "--lr-drop-at", str(drop_at)]  # fmt: skip
    train(hyper_path_run(runs, quality), quality, steps, extra, threads, "hyperprior")


def large_hyperprior_run(runs: Path, architecture: str, quality: int) -> Path:
    """A hyperprior's second stage, on large patches: what the mean-scale model ships."""
    return runs / f"{architecture}-q{quality}-large"


def ladder_run(runs: Path, quality: int) -> Path:
    """A scale hyperprior's rung of the ladder."""
    return runs / f"hyperprior-q{quality}-ladder"


def hyper_path_run(runs: Path, quality: int) -> Path:
    """The run each scale hyperprior ships: its hyper path trained alone after the ladder."""
    return runs / f"hyperprior-q{quality}-latents"


def side_by_side(runs: list[Callable[[], None]]) -> None:
    """Run ``runs`` two at a time, one per CPU core, and re-raise the first failure."""
    with ThreadPoolExecutor(len(CHAINS)) as pool:
        for done in [pool.submit(run) for run in runs]:
            done.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of the runs")
    parser.add_argument("--base-steps", type=int, default=52_000)
    parser.add_argument("--tune-steps", type=int, default=3_000, help="steps of every chain's fine-tune")
    parser.add_argument("--polish-steps", type=int, default=5_000, help="steps of every polish round")
    parser.add_argument("--polish-rounds", type=int, default=2, help="polish rounds after the chains")
    parser.add_argument("--long-steps", type=int, default=12_000, help="steps of the first long fine-tunes")
    parser.add_argument("--top-steps", type=int, default=6_000, help="steps of the top rung's fine-tune")
    parser.add_argument("--later-long-steps", type=int, default=8_000,
                        help="steps of the top rung's later long rounds")
    parser.add_argument("--descent-steps", type=int, default=6_000,
                        help="steps of every fine-tune down from the top rung")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per chain")
    args = parser.parse_args()
    runs, both_cores = args.runs, 2 * args.threads
    train(runs / "factorized-base", BASE_QUALITY, args.base_steps, SMALL_PATCHES, both_cores)
    side_by_side([partial(run_chain, runs, chain, args.tune_steps, args.polish_steps,
                          args.polish_rounds, args.threads) for chain in CHAINS])  # fmt: skip
    below_top = TOP_QUALITY - 1
    fine_tune(long_run(runs, below_top), run_after(runs, below_top, args.polish_rounds), below_top,
              args.long_steps, SMALL_PATCHES, both_cores)  # fmt: skip
    fine_tune(runs / f"factorized-q{TOP_QUALITY}", long_run(runs, below_top), TOP_QUALITY,
              args.top_steps, SMALL_PATCHES, both_cores)  # fmt: skip
    start = runs / f"factorized-q{TOP_QUALITY}"
    for round_ in range(1, TOP_ROUNDS + 1):
        steps = args.long_steps if round_ == 1 else args.later_long_steps
        patches = LARGE_PATCHES if round_ == TOP_ROUNDS else SMALL_PATCHES
        fine_tune(long_run(runs, TOP_QUALITY, round_), start, TOP_QUALITY, steps, patches, both_cores)
        start = long_run(runs, TOP_QUALITY, round_)
    side_by_side([partial(fine_tune, descent(runs, quality), start, quality, args.descent_steps,
                          SMALL_PATCHES, args.threads) for quality in DESCENDED])  # fmt: skip
    polished = [(descent(runs, quality), descent(runs, quality, polished=True), quality)
                for quality in DESCENDED] + [(start, run_after(runs, TOP_QUALITY, 1), TOP_QUALITY)]
    side_by_side([partial(fine_tune, out, begin, quality, args.polish_steps, POLISH, args.threads)
                  for begin, out, quality in polished])  # fmt: skip
    side_by_side([partial(hyperprior, runs, architecture, quality, *HYPER_STEPS[architecture],
                          args.threads, args.polish_rounds)
                  for architecture in HYPERPRIORS for quality in HYPER_QUALITIES])  # fmt: skip
    side_by_side([partial(hyperprior_rung, runs, quality, args.threads, args.polish_rounds)
                  for quality in HYPER_LADDER])  # fmt: skip
    side_by_side([partial(hyper_path_rung, runs, quality, args.threads) for quality in HYPER_LADDER])
    print("export the shipped runs into the package (add --hardware to say where they trained):")
    for quality in CONFIGURATIONS["factorized"]:
        print(f"python -m nicbook export {shipped_run(runs, quality, args.polish_rounds)} "
              f"--quality {quality} --kodak $NICBOOK_DATA/kodak")
    shipped_hyper = [(hyper_path_run(runs, quality), quality) for quality in HYPER_LADDER] + [
        (large_hyperprior_run(runs, "mean-scale", quality), quality) for quality in HYPER_QUALITIES]
    for run, quality in shipped_hyper:
        print(f"python -m nicbook export {run} --quality {quality} --kodak $NICBOOK_DATA/kodak")


if __name__ == "__main__":
    main()
