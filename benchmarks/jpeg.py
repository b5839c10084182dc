"""Benchmark of nicbook's baseline JPEG codec against Pillow (libjpeg) on Kodak.

For qualities 10, 25, 50, 75, 90 and 4:2:0 / 4:4:4 chroma sampling, every image is encoded
by nicbook and by Pillow with the same settings (standard Huffman tables, then optimized
ones). Reported per setting: mean bits per pixel, mean PSNR of each file as Pillow decodes
it (so only the encoders differ), whether Pillow opened every nicbook file, the PSNR of
nicbook's decoder on Pillow's files against Pillow's own decode, and encode / decode times
(decode: both decoders on Pillow's file). With ``--json`` the last line is one JSON object.

    python benchmarks/jpeg.py [DIR] [--images N] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from nicbook import jpeg
from nicbook.data import kodak_paths, load_image
from nicbook.metrics import bpp, psnr
from nicbook.plot import markdown_table

QUALITIES = (10, 25, 50, 75, 90)
PILLOW_SUBSAMPLING = {"420": 2, "444": 0}


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def pillow_encode(image: np.ndarray, quality: int, subsampling: str, optimize: bool = False) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(
        buffer, "JPEG", quality=quality, subsampling=PILLOW_SUBSAMPLING[subsampling], optimize=optimize
    )
    return buffer.getvalue()


def pillow_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB"))


def measure(image: np.ndarray, quality: int, subsampling: str) -> dict:
    """Every figure of one image at one setting."""
    ours_encode_s, ours = timed(jpeg.encode, image, quality, subsampling)
    pillow_encode_s, pillows = timed(pillow_encode, image, quality, subsampling)
    try:
        ours_seen_by_pillow = pillow_decode(ours)
        opened = ours_seen_by_pillow.shape == image.shape
    except OSError:
        ours_seen_by_pillow, opened = None, False
    ours_decode_s, decoded_by_us = timed(jpeg.decode, pillows)
    pillow_decode_s, decoded_by_pillow = timed(pillow_decode, pillows)
    optimized_ours = jpeg.encode(image, quality, subsampling, optimize=True)
    optimized_pillow = pillow_encode(image, quality, subsampling, optimize=True)
    return {
        "bpp_ours": bpp(ours, image.shape),
        "bpp_pillow": bpp(pillows, image.shape),
        "psnr_ours": psnr(image, ours_seen_by_pillow) if opened else math.nan,
        "psnr_pillow": psnr(image, decoded_by_pillow),
        "opened": opened,
        "identical_file": ours == pillows,
        "identical_decode": bool(np.array_equal(decoded_by_us, decoded_by_pillow)),
        "decode_psnr": psnr(decoded_by_us, decoded_by_pillow),
        "encode_s_ours": ours_encode_s,
        "encode_s_pillow": pillow_encode_s,
        "decode_s_ours": ours_decode_s,
        "decode_s_pillow": pillow_decode_s,
        "bpp_optimized_ours": bpp(optimized_ours, image.shape),
        "bpp_optimized_pillow": bpp(optimized_pillow, image.shape),
        "identical_optimized_file": optimized_ours == optimized_pillow,
    }


def finite(value: float, digits: int = 4) -> float | None:
    """JSON has no infinity: identical decodes are reported as ``None``."""
    return round(float(value), digits) if math.isfinite(value) else None


def summarize(records: list[dict], quality: int, subsampling: str) -> dict:
    mean = {key: float(np.mean([r[key] for r in records])) for key in records[0]}
    return {
        "quality": quality,
        "subsampling": subsampling,
        "nicbook": {
            "bpp": round(mean["bpp_ours"], 5),
            "psnr": round(mean["psnr_ours"], 4),
            "encode_s": round(mean["encode_s_ours"], 4),
            "decode_s": round(mean["decode_s_ours"], 4),
            "max_encode_s": round(max(r["encode_s_ours"] for r in records), 4),
            "max_decode_s": round(max(r["decode_s_ours"] for r in records), 4),
        },
        "pillow": {
            "bpp": round(mean["bpp_pillow"], 5),
            "psnr": round(mean["psnr_pillow"], 4),
            "encode_s": round(mean["encode_s_pillow"], 5),
            "decode_s": round(mean["decode_s_pillow"], 5),
        },
        "size_ratio": round(mean["bpp_ours"] / mean["bpp_pillow"], 5),
        "psnr_delta_db": round(mean["psnr_ours"] - mean["psnr_pillow"], 4),
        "pillow_opened_all": all(r["opened"] for r in records),
        "identical_files": round(mean["identical_file"], 4),
        "identical_decodes": round(mean["identical_decode"], 4),
        "decode_psnr_vs_pillow_min": finite(min(r["decode_psnr"] for r in records)),
        "decode_psnr_vs_pillow_mean": finite(mean["decode_psnr"]),
        "encode_time_ratio": round(mean["encode_s_ours"] / mean["encode_s_pillow"], 2),
        "decode_time_ratio": round(mean["decode_s_ours"] / mean["decode_s_pillow"], 2),
        "optimize": {
            "nicbook_bpp": round(mean["bpp_optimized_ours"], 5),
            "pillow_bpp": round(mean["bpp_optimized_pillow"], 5),
            "size_ratio": round(mean["bpp_optimized_ours"] / mean["bpp_optimized_pillow"], 5),
            "identical_files": round(mean["identical_optimized_file"], 4),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", help="folder of PNG images (default: the Kodak set)")
    parser.add_argument("--images", type=int, default=None, help="use only the first N images")
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    args = parser.parse_args()
    paths = sorted(Path(args.directory).glob("*.png")) if args.directory else kodak_paths()
    paths = paths[: args.images] if args.images else paths
    if not paths:
        raise SystemExit("no PNG images found")
    images = [load_image(path) for path in paths]
    jpeg.decode(jpeg.encode(images[0][:16, :16]))  # build the decoder's lookup tables once

    settings = [(s, q) for s in PILLOW_SUBSAMPLING for q in QUALITIES]
    results = []
    with tqdm(total=len(settings) * len(images), desc="jpeg", leave=False) as progress:
        for subsampling, quality in settings:
            records = []
            for image in images:
                records.append(measure(image, quality, subsampling))
                progress.update()
            results.append(summarize(records, quality, subsampling))

    rows = [
        (
            r["subsampling"], r["quality"], r["nicbook"]["bpp"], r["pillow"]["bpp"], r["size_ratio"],
            r["nicbook"]["psnr"], r["pillow"]["psnr"], r["psnr_delta_db"], r["optimize"]["size_ratio"],
            "yes" if r["pillow_opened_all"] else "NO", f"{r['identical_files']:.0%}", f"{r['identical_decodes']:.0%}",
            "inf" if r["decode_psnr_vs_pillow_min"] is None else r["decode_psnr_vs_pillow_min"],
            r["nicbook"]["encode_s"], r["encode_time_ratio"], r["nicbook"]["decode_s"], r["decode_time_ratio"],
        )
        for r in results
    ]  # fmt: skip
    headers = [
        "sampling", "quality", "bpp nicbook", "bpp Pillow", "size ratio", "PSNR nicbook", "PSNR Pillow", "ΔPSNR",
        "optimize size ratio", "Pillow opens", "same bytes", "same pixels", "decode PSNR min",
        "encode s", "× Pillow", "decode s", "× Pillow",
    ]  # fmt: skip
    print(f"{len(images)} images from {paths[0].parent}")
    print(markdown_table(rows, headers, digits=4))

    summary = {
        "pillow_opened_fraction": float(np.mean([r["pillow_opened_all"] for r in results])),
        "identical_files_fraction": round(float(np.mean([r["identical_files"] for r in results])), 4),
        "identical_decodes_fraction": round(float(np.mean([r["identical_decodes"] for r in results])), 4),
        "max_abs_size_deviation": round(max(abs(r["size_ratio"] - 1) for r in results), 5),
        "max_abs_psnr_delta_db": round(max(abs(r["psnr_delta_db"]) for r in results), 4),
        "min_decode_psnr_vs_pillow": min(
            (r["decode_psnr_vs_pillow_min"] for r in results if r["decode_psnr_vs_pillow_min"] is not None),
            default=None,
        ),
        "max_abs_optimize_size_deviation": round(max(abs(r["optimize"]["size_ratio"] - 1) for r in results), 5),
        "max_encode_s": max(r["nicbook"]["max_encode_s"] for r in results),
        "max_decode_s": max(r["nicbook"]["max_decode_s"] for r in results),
    }
    targets = {
        "pillow_opens_all": summary["pillow_opened_fraction"] == 1.0,
        "size_within_1pct": summary["max_abs_size_deviation"] <= 0.01,
        "psnr_within_0.1db": summary["max_abs_psnr_delta_db"] <= 0.1,
        "decode_psnr_at_least_45db": (summary["min_decode_psnr_vs_pillow"] or math.inf) >= 45,
        "optimize_within_1pct": summary["max_abs_optimize_size_deviation"] <= 0.01,
        "encode_under_1s": summary["max_encode_s"] < 1.0,
        "decode_under_1s": summary["max_decode_s"] < 1.0,
    }
    print("targets: " + ", ".join(f"{name} {'met' if met else 'MISSED'}" for name, met in targets.items()))
    if args.json:
        print(json.dumps({
            "benchmark": "jpeg",
            "images": len(images),
            "settings": results,
            "summary": summary,
            "targets": targets,
        }))  # fmt: skip


if __name__ == "__main__":
    main()
