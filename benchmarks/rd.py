"""Rate–distortion of every codec of the book on one folder of images (Kodak).

For nicbook's neural codec (every shipped zoo model, plus ``--checkpoint`` files, one curve per
architecture; for the factorized models, files with per-image scales, the default, and with the
models' own tables), nicbook's JPEG
(4:2:0), nicbook's KLT block coder (basis learned on the training photos, never on DIR), and Pillow's
JPEG 4:2:0, WebP, JPEG 2000 (OpenJPEG, irreversible, colour transform) and AVIF: the RD points
(bpp from the real file sizes, mean RGB PSNR over the images) and the Bjøntegaard delta rate of each
against Pillow's JPEG 4:2:0 and against Pillow's WebP. ``--refine-steps N`` adds the neural codec
with its encoder refining each image's latents (:mod:`nicbook.codec.refinement`). Writes an RD plot
(``--plot``) and, with ``--json``, prints as its last line ``{"codecs": {name: [[bpp, psnr], ...]},
"bd_rate_vs_jpeg": {name: percent or null}, "bd_rate_vs_webp": {...}}`` (the last only where
Pillow has WebP).

    python benchmarks/rd.py $NICBOOK_DATA/kodak [--images N] [--checkpoint PATH ...] [--refine-steps N] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
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
REFINED = "nicbook (factorized, refined encoder)"
PEER = "WebP"  # the second yardstick: the codec a learned one should beat first


def family(architecture: str) -> str:
    """The name of the RD curve of a zoo architecture's models: ``nicbook (hyperprior)``."""
    return f"nicbook ({architecture})"


def neural_points(
    images: list[np.ndarray], checkpoints: list[Path], refine_steps: int = 0
) -> dict[str, list[tuple[float, float]]]:
    """RD points of every shipped zoo model and every checkpoint, one curve per architecture, sorted
    by rate. A factorized model adds two: files with its own tables, and, when ``refine_steps`` is
    positive, files whose latents the encoder refined (:mod:`nicbook.codec.refinement`). Its default
    files and those with its own tables code the same latents, so they decode to the same image
    (``tests/codec/test_codec.py`` checks it), whose PSNR is measured once."""
    models = [
        (zoo.load(entry["architecture"], entry["quality"]), entry["lmbda"]) for entry in zoo.shipped()
    ]
    for path in checkpoints:
        state = load_checkpoint(path)
        models.append((model_from_checkpoint(state), state["train_config"]["lmbda"]))
    points: dict[str, list[tuple[float, float]]] = {}
    refine_seconds = []
    for model, lmbda in tqdm(models, desc="nicbook neural codec"):
        adaptive = family(model.architecture)
        names = [adaptive] + ([STATIC] + ([REFINED] if refine_steps else []) if model.architecture == "factorized" else [])
        sizes = {name: [] for name in names}
        qualities = {adaptive: [], REFINED: []}
        refinement = LatentRefinement(lmbda, refine_steps)
        for image in images:
            data = codec.compress(image, model)
            sizes[adaptive].append(metrics.bpp(data, image.shape))
            qualities[adaptive].append(metrics.psnr(image, codec.decompress(data, model)))
            if STATIC in sizes:
                sizes[STATIC].append(metrics.bpp(codec.compress(image, model, adaptive=False), image.shape))
            if REFINED in sizes:
                start = time.perf_counter()
                refined = codec.compress(image, model, refinement=refinement)
                refine_seconds.append(time.perf_counter() - start)
                sizes[REFINED].append(metrics.bpp(refined, image.shape))
                qualities[REFINED].append(metrics.psnr(image, codec.decompress(refined, model)))
        for name, rates in sizes.items():
            psnrs = qualities[REFINED if name == REFINED else adaptive]
            points.setdefault(name, []).append((float(np.mean(rates)), float(np.mean(psnrs))))
    if refine_seconds:
        print(f"refined encoder ({refine_steps} steps): {np.mean(refine_seconds):.1f} s per image on average")
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
        help="also measure the neural codec refining the latents with N steps (about 1.5 s each per Kodak image)",
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
    neural = neural_points(images, args.checkpoint, args.refine_steps)
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
