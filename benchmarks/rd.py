"""Rate–distortion of every codec of the book on one folder of images (Kodak).

For nicbook's neural codec (every shipped zoo model, plus ``--checkpoint`` files, one curve per
architecture; for the factorized models, files with per-image scales, the default, and with the
models' own tables), nicbook's JPEG
(4:2:0), nicbook's KLT block coder (basis learned on the training photos, never on DIR), and Pillow's
JPEG 4:2:0, WebP, JPEG 2000 (OpenJPEG, irreversible, colour transform) and AVIF: the RD points
(bpp from the real file sizes, mean RGB PSNR over the images) and the Bjøntegaard delta rate of each
against Pillow's JPEG 4:2:0 and against Pillow's WebP. ``--refine-steps N`` adds the neural codec
with its encoder refining each image's latents (:mod:`nicbook.codec.refinement`), a curve per
architecture (``--refine-architectures`` picks them; ``--jobs`` spreads those slow encodings over
processes). Writes an RD plot
(``--plot``) and, with ``--json``, prints as its last line ``{"codecs": {name: [[bpp, psnr], ...]},
"bd_rate_vs_jpeg": {name: percent or null}, "bd_rate_vs_webp": {...}}`` (the last only where
Pillow has WebP).

    python benchmarks/rd.py $NICBOOK_DATA/kodak [--images N] [--checkpoint PATH ...] [--json]
        [--refine-steps N [--refine-architectures ARCH ...] [--jobs N]]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from tqdm.auto import tqdm

from nicbook import codec, jpeg, metrics, plot, zoo
from nicbook.blockcoder import training_klt_coder
from nicbook.codec import LatentRefinement
from nicbook.data import IMAGE_SUFFIXES, load_image
from nicbook.evaluation import rd_curve
from nicbook.nn.checkpoints import load_checkpoint, model_from_checkpoint
from nicbook.pillow_codecs import CODECS, available_codecs

JPEG_QUALITIES = (5, 10, 20, 30, 50, 75, 90, 95)
#: nicbook's JPEG (4:2:0) as a codec for :func:`nicbook.evaluation.rd_curve`.
NICBOOK_JPEG = SimpleNamespace(
    name="nicbook JPEG",
    encode=lambda image, quality: jpeg.encode(image, int(quality), "420"),
    decode=jpeg.decode,
    settings=JPEG_QUALITIES,
)
KLT_STEPS = (4.0, 7.0, 12.0, 20.0, 32.0, 50.0)
REFERENCE = "JPEG"
STATIC = "nicbook (factorized, model tables)"
#: Architectures of the zoo whose encoder ``--refine-steps`` refines by default.
ARCHITECTURES = ("factorized", "hyperprior", "mean-scale")
PEER = "WebP"  # the second yardstick: the codec a learned one should beat first


def family(architecture: str) -> str:
    """The name of the RD curve of a zoo architecture's models: ``nicbook (hyperprior)``."""
    return f"nicbook ({architecture})"


def refined_family(architecture: str) -> str:
    """The name of the RD curve of an architecture's models with the refining encoder."""
    return f"nicbook ({architecture}, refined encoder)"


@functools.lru_cache(maxsize=2)
def coding_model(source: str) -> codec.CodingModel:
    """A zoo model by its name, or the model of a checkpoint file (kept for the next image)."""
    if source in {entry["name"] for entry in zoo.shipped()}:
        return zoo.load_by_name(source)
    return model_from_checkpoint(load_checkpoint(source))


def refined_point(source: str, lmbda: float, steps: int, image: np.ndarray) -> tuple[float, float, float]:
    """bpp, PSNR and encoding seconds of ``image`` coded by the model ``source`` with refined latents."""
    model = coding_model(source)
    start = time.perf_counter()
    data = codec.compress(image, model, refinement=LatentRefinement(lmbda, steps))
    seconds = time.perf_counter() - start
    return metrics.bpp(data, image.shape), metrics.psnr(image, codec.decompress(data, model)), seconds


def neural_points(
    images: list[np.ndarray],
    checkpoints: list[Path],
    refine_steps: int = 0,
    refine_architectures: tuple[str, ...] = ARCHITECTURES,
    jobs: int = 1,
) -> dict[str, list[tuple[float, float]]]:
    """RD points of every shipped zoo model and every checkpoint, one curve per architecture, sorted
    by rate. A factorized model adds files with its own tables. When ``refine_steps`` is positive,
    the models of ``refine_architectures`` add files whose latents the encoder refined
    (:mod:`nicbook.codec.refinement`), encoded by ``jobs`` processes of one thread each when ``jobs``
    is more than 1. A factorized model's default files and those with its own tables code the same
    latents, so they decode to the same image (``tests/codec/test_codec.py`` checks it), whose PSNR
    is measured once."""
    sources = [(entry["name"], entry["lmbda"]) for entry in zoo.shipped()]
    sources += [(str(path), load_checkpoint(path)["train_config"]["lmbda"]) for path in checkpoints]
    points: dict[str, list[tuple[float, float]]] = {}
    refined_tasks = []
    for source, lmbda in tqdm(sources, desc="nicbook neural codec"):
        model = coding_model(source)
        sizes, qualities, static = [], [], []
        for image in images:
            data = codec.compress(image, model)
            sizes.append(metrics.bpp(data, image.shape))
            qualities.append(metrics.psnr(image, codec.decompress(data, model)))
            if model.architecture == "factorized":
                static.append(metrics.bpp(codec.compress(image, model, adaptive=False), image.shape))
        points.setdefault(family(model.architecture), []).append((float(np.mean(sizes)), float(np.mean(qualities))))
        if static:
            points.setdefault(STATIC, []).append((float(np.mean(static)), float(np.mean(qualities))))
        if refine_steps and model.architecture in refine_architectures:
            refined_tasks += [(model.architecture, source, lmbda, image) for image in images]
    if refined_tasks:
        architectures, sources, lmbdas, refined_images = zip(*refined_tasks)
        with ProcessPoolExecutor(jobs, initializer=torch.set_num_threads, initargs=(1,)) if jobs > 1 else nullcontext() as pool:
            run = pool.map if pool else map
            outcomes = list(tqdm(
                run(refined_point, sources, lmbdas, [refine_steps] * len(refined_tasks), refined_images),
                total=len(refined_tasks), desc=f"refined encoder, {refine_steps} steps",
            ))  # fmt: skip
        by_model: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for architecture, source, outcome in zip(architectures, sources, outcomes):
            by_model.setdefault((architecture, source), []).append(outcome)
        for (architecture, _), measured in by_model.items():
            rates, psnrs, _ = zip(*measured)
            points.setdefault(refined_family(architecture), []).append((float(np.mean(rates)), float(np.mean(psnrs))))
        threads = ", one thread" if jobs > 1 else ""
        print(f"refined encoder ({refine_steps} steps): {np.mean([o[2] for o in outcomes]):.1f} s per image on average{threads}")
    return {name: sorted(curve) for name, curve in points.items()}


def bd_rates_against(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], reference: str
) -> dict[str, float | None]:
    """BD-rate in percent of every other curve against ``reference`` (None where it has no value)."""
    rates: dict[str, float | None] = {}
    for name, curve in curves.items():
        if name == reference:
            continue
        try:
            rates[name] = round(metrics.bd_rate(curves[reference], curve), 2)
        except ValueError as error:  # fewer than four points, or no PSNR overlap
            rates[name] = None
            print(f"{name}: no BD-rate against {reference} ({error})")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="folder of evaluation images (Kodak)")
    parser.add_argument("--images", type=int, default=None, help="use only the first N images")
    parser.add_argument("--checkpoint", type=Path, action="append", default=[], help="also measure this model")
    parser.add_argument(
        "--refine-steps", type=int, default=0, metavar="N",
        help="also measure the neural codec refining the latents with N steps (about 2 s each per Kodak image)",
    )  # fmt: skip
    parser.add_argument(
        "--refine-architectures", nargs="+", choices=ARCHITECTURES, default=ARCHITECTURES, metavar="ARCH",
        help=f"the architectures --refine-steps refines (default: all of {', '.join(ARCHITECTURES)})",
    )  # fmt: skip
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="processes (one thread each) for the refined encodings",
    )  # fmt: skip
    parser.add_argument("--klt-photos", type=int, default=200, help="training photos the KLT is learned on")
    parser.add_argument("--plot", type=Path, default=Path("rd.png"), help="where to write the RD plot")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()

    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.images]
    if not paths:
        raise SystemExit(f"no images in {args.folder}")
    images = [load_image(path) for path in paths]
    print(f"{len(images)} images from {args.folder}")

    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in available_codecs():
        curves[name] = rd_curve(CODECS[name], images, progress=True)
    curves["JPEG (nicbook)"] = rd_curve(NICBOOK_JPEG, images, progress=True)
    klt, source = training_klt_coder(args.klt_photos)
    print(f"KLT learned on {source}")
    curves["KLT coder"] = rd_curve(klt, images, KLT_STEPS, progress=True)
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, not {args.jobs}")
    neural = neural_points(images, args.checkpoint, args.refine_steps, tuple(args.refine_architectures), args.jobs)
    for name, points in neural.items():
        curves[name] = (np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    if not neural:
        print("neural codec: no shipped zoo weights and no --checkpoint, so it is not measured")

    references = [name for name in (REFERENCE, PEER) if name in curves]
    bd_rates = {f"bd_rate_vs_{reference.lower()}": bd_rates_against(curves, reference) for reference in references}

    def bd_cell(rates: dict[str, float | None], name: str) -> object:
        if name not in rates:
            return "reference"
        return "n/a" if rates[name] is None else rates[name]

    rows = [[name, " ".join(f"{b:.3f}/{p:.2f}" for b, p in zip(*curve)),
             *(bd_cell(rates, name) for rates in bd_rates.values())]
            for name, curve in curves.items()]  # fmt: skip
    headers = [f"BD-rate vs {reference} (%)" for reference in references]
    print(plot.markdown_table(rows, ["codec", "bpp/PSNR points", *headers], 2))
    ax = plot.rd_plot(curves, title=f"{len(images)} images of {args.folder.name}")
    ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))  # many curves: beside the axes
    ax.figure.savefig(args.plot, bbox_inches="tight")
    print(f"plot: {args.plot}")
    if args.json:
        codecs = {name: [[round(float(b), 4), round(float(p), 3)] for b, p in zip(*curve)] for name, curve in curves.items()}
        print(json.dumps({"codecs": codecs, **bd_rates}))


if __name__ == "__main__":
    main()
