"""The hyperprior families against the factorized family at equal rate, on Kodak or on other photos.

Every shipped zoo model (and every ``--checkpoint``, which joins its architecture's family) encodes
and decodes every image; the table gives each model's mean bpp (from the files) and RGB PSNR, and,
for each model outside the factorized family, its PSNR gain over the factorized curve at its rate
(interpolated in log-rate; "n/a" outside the curve's rates), and each family's BD-rate against the
factorized one. ``--held-out`` measures the training photos' held-out split (never trained on)
instead of a folder: the check that an ordering seen on Kodak is not Kodak's alone. With ``--json``
the last line is ``{"source", "images", "points": {model: [bpp, psnr]}, "gain_db": {model: dB or
null}, "bd_rate_vs_factorized": {architecture: percent or null}}``.

    python benchmarks/families.py $NICBOOK_DATA/kodak [--json]
    python benchmarks/families.py --held-out [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from nicbook import codec, metrics, plot, zoo
from nicbook.data import load_image, train_validation_split, training_image_paths
from nicbook.evaluation import folder_images, gain_at_equal_rate, image_records, mean_point
from nicbook.nn.checkpoints import load_checkpoint, model_from_checkpoint
from nicbook.nn.config import TrainConfig

REFERENCE = "factorized"


def family_points(models: list, images: list[np.ndarray]) -> dict[str, dict[str, tuple[float, float]]]:
    """Architecture -> model name -> mean (bpp, PSNR) of ``models`` over ``images``."""
    points: dict[str, dict[str, tuple[float, float]]] = {}
    for model in models:
        records = image_records(lambda image: codec.compress(image, model), lambda data: codec.decompress(data, model),
                                images, progress=True, desc=model.name)  # fmt: skip
        points.setdefault(model.architecture, {})[model.name] = mean_point(records)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", help="folder of evaluation images (Kodak)")
    parser.add_argument("--held-out", action="store_true", help="the training photos' held-out split instead")
    parser.add_argument("--images", type=int, default=None, help="use only the first N images")
    parser.add_argument("--checkpoint", type=Path, action="append", default=[], help="also measure this model")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    if (args.folder is None) == (not args.held_out):
        parser.error("give a folder or --held-out, not both")
    if args.held_out:
        paths = train_validation_split(training_image_paths(), TrainConfig().validation_fraction)[1]
        source = "the training photos' held-out split"
    else:
        paths, source = folder_images(args.folder), str(args.folder.name)
    images = [load_image(path) for path in paths[: args.images]]
    print(f"{len(images)} images from {source}")

    models = [zoo.load(entry["architecture"], entry["quality"]) for entry in zoo.shipped()]
    for path in args.checkpoint:
        model = model_from_checkpoint(load_checkpoint(path))
        model.name = f"{path.parent.name} ({model.architecture})"
        models.append(model)
    points = family_points(models, images)
    reference = points.get(REFERENCE, {})
    curve = tuple(np.array(values) for values in zip(*sorted(reference.values()))) if reference else None

    gains: dict[str, float | None] = {}
    rows = []
    for architecture, family in points.items():
        for name, point in sorted(family.items(), key=lambda item: item[1]):
            gain = None
            if architecture != REFERENCE and curve is not None:
                try:
                    gain = round(gain_at_equal_rate(point, curve), 3)
                except ValueError:  # beyond the factorized family's rates
                    pass
                gains[name] = gain
            rows.append([name, f"{point[0]:.4f}", f"{point[1]:.2f}",
                         "" if architecture == REFERENCE else ("n/a" if gain is None else f"{gain:+.2f}")])  # fmt: skip
    print(plot.markdown_table(rows, ["model", "bpp", "PSNR (dB)", "gain over the factorized curve (dB)"]))

    bd_rates: dict[str, float | None] = {}
    for architecture, family in points.items():
        if architecture == REFERENCE or curve is None:
            continue
        try:
            bd_rates[architecture] = round(metrics.bd_rate(curve, tuple(np.array(v) for v in zip(*family.values()))), 2)
        except ValueError as error:  # fewer than four models, or no overlap
            bd_rates[architecture] = None
            print(f"{architecture}: no BD-rate against the factorized family ({error})")
    for architecture, rate in bd_rates.items():
        if rate is not None:
            print(f"BD-rate of the {architecture} family against the factorized family: {rate:+.2f} %")
    if args.json:
        print(json.dumps({
            "source": source, "images": len(images),
            "points": {name: [round(b, 5), round(p, 4)] for family in points.values() for name, (b, p) in family.items()},
            "gain_db": gains, "bd_rate_vs_factorized": bd_rates,
        }))  # fmt: skip


if __name__ == "__main__":
    main()
