"""Measuring codecs: rates from the bytes of real files, PSNR from decoding them, over sets of images.

Every RD point in the book comes from :func:`image_records`: each image is encoded, its bytes are
counted and decoded, and the decoding is compared with the original. :func:`rd_curve` sweeps a
codec's settings; :func:`evaluate_folder` measures one neural model on a folder (Kodak).
A *codec* here is anything with ``encode(image, setting) -> bytes`` and ``decode(bytes) -> image``
(and optionally ``settings``, its default sweep): the Pillow codecs, the block coders.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from nicbook.data import IMAGE_SUFFIXES, load_image
from nicbook.errors import NicbookError
from nicbook.metrics import bpp, psnr

__all__ = ["Codec", "evaluate_folder", "image_records", "mean_point", "rd_curve"]


class Codec(Protocol):
    """What :func:`rd_curve` needs of a codec."""

    def encode(self, image: np.ndarray, setting: float) -> bytes: ...

    def decode(self, data: bytes) -> np.ndarray: ...


def image_records(
    encode: Callable[[np.ndarray], bytes],
    decode: Callable[[bytes], np.ndarray],
    images: Sequence[np.ndarray],
    names: Sequence[str] | None = None,
    progress: bool = False,
    desc: str = "images",
) -> list[dict]:
    """One record per image: ``image`` (its name), ``bytes``, ``bpp`` of the file and ``psnr`` of its decoding."""
    if len(images) == 0:
        raise ValueError("need at least one image to measure a codec")
    names = [f"image {index}" for index in range(len(images))] if names is None else names
    records = []
    for name, image in tqdm(list(zip(names, images)), desc=desc, disable=not progress, file=sys.stderr):
        data = encode(image)
        records.append(
            {"image": name, "bytes": len(data), "bpp": bpp(data, image.shape), "psnr": psnr(image, decode(data))}
        )
    return records


def mean_point(records: Sequence[dict], rate: str = "bpp") -> tuple[float, float]:
    """Mean rate (the records' ``rate`` field) and mean PSNR of per-image records."""
    return float(np.mean([record[rate] for record in records])), float(np.mean([r["psnr"] for r in records]))


def rd_curve(
    codec: Codec,
    images: Sequence[np.ndarray],
    settings: Sequence[float] | None = None,
    progress: bool = False,
    desc: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean bpp (from the file sizes) and mean RGB PSNR over ``images`` at each setting.

    ``settings`` defaults to the codec's own sweep (its ``settings`` attribute).
    """
    settings = getattr(codec, "settings", None) if settings is None else settings
    if settings is None:
        raise ValueError(f"{type(codec).__name__} has no default settings: pass settings")
    desc = desc or getattr(codec, "name", type(codec).__name__)
    points = [
        mean_point(image_records(lambda image: codec.encode(image, setting), codec.decode, images))
        for setting in tqdm(list(settings), desc=desc, disable=not progress, file=sys.stderr)
    ]
    rates, qualities = zip(*points)
    return np.array(rates), np.array(qualities)


def folder_images(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    paths = sorted(path for path in Path(folder).iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise NicbookError(f"no images in {folder}")
    return paths


def evaluate_folder(
    folder: str | Path,
    encode: Callable[[np.ndarray], bytes],
    decode: Callable[[bytes], np.ndarray],
    label: str,
    progress: bool = True,
) -> dict:
    """Encode and decode every image in ``folder``: ``{"model": label, "bpp", "psnr", "images": records}``.

    The means are over the images (bpp of the real files, RGB PSNR); ``images`` holds the
    per-image records of :func:`image_records`.
    """
    paths = folder_images(folder)
    records = []
    for path in tqdm(paths, desc=label, disable=not progress, file=sys.stderr):
        records += image_records(encode, decode, [load_image(path)], [path.name])
    rate, quality = mean_point(records)
    return {"model": label, "bpp": rate, "psnr": quality, "images": records}
