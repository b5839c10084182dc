"""Measuring codecs: rates from the bytes of real files, PSNR from decoding them, over sets of images.

Every RD point in the book comes from :func:`image_records`: each image is encoded, its bytes are
counted and decoded, and the decoding is compared with the original. :func:`rd_curve` sweeps a
codec's settings; :func:`evaluate_folder` measures one neural model on a folder (Kodak), and
:func:`neural_records` several models' files of a few images in detail (torch is imported only
then). :func:`closest_setting` finds a codec's file nearest a given rate, and :func:`gain_at_equal_rate`
the PSNR a point gains over a curve, for comparisons at equal rate; :func:`rd_cost` and :func:`coded_point` give the ``R + λD`` a model trained with λ minimises.
A *codec* here is anything with ``encode(image, setting) -> bytes`` and ``decode(bytes) -> image``
(and optionally ``settings``, its default sweep): the Pillow codecs, the block coders.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from tqdm.auto import tqdm

from nicbook.data import IMAGE_SUFFIXES, load_image
from nicbook.errors import NicbookError
from nicbook.metrics import bpp, psnr

if TYPE_CHECKING:
    from nicbook.nn.models import FactorizedPrior, ScaleHyperprior

__all__ = [
    "Codec",
    "closest_setting",
    "coded_point",
    "evaluate_folder",
    "gain_at_equal_rate",
    "image_records",
    "mean_point",
    "neural_records",
    "rd_cost",
    "rd_curve",
    "records_curve",
]


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
    return records_curve([
        image_records(lambda image: codec.encode(image, setting), codec.decode, images)
        for setting in tqdm(list(settings), desc=desc, disable=not progress, file=sys.stderr)
    ])


def records_curve(record_lists: Sequence[Sequence[dict]], rate: str = "bpp") -> tuple[np.ndarray, np.ndarray]:
    """An RD curve from per-image records measured before: the :func:`mean_point` of each list, as arrays.

    One list per point of the curve (a setting, or one model of a family); ``rate`` names the
    records' rate field.
    """
    if len(record_lists) == 0:
        raise ValueError("a curve needs at least one list of records")
    rates, qualities = zip(*(mean_point(records, rate) for records in record_lists))
    return np.array(rates), np.array(qualities)


def gain_at_equal_rate(
    point: tuple[float, float], curve: tuple[Sequence[float], Sequence[float]], reach: float = 0.1
) -> float:
    """PSNR of ``point`` (bpp, dB) less the PSNR of ``curve`` (bpps, PSNRs) at the same rate, in dB.

    The curve is interpolated linearly in log-rate between its two points around the rate. A rate
    just beyond the curve's ends (by at most ``reach`` in natural log-rate, 10 % by default) extends
    the line through the two end points; farther out a curve says nothing, and ``ValueError`` is raised.
    """
    rates, qualities = (np.asarray(values, dtype=float) for values in curve)
    order = np.argsort(rates)
    logs, qualities = np.log(rates[order]), qualities[order]
    rate, quality = point
    at = float(np.log(rate))
    if len(logs) < 2 or not logs[0] - reach <= at <= logs[-1] + reach:
        raise ValueError(f"{rate:.4f} bpp lies outside the curve's rates, {rates.min():.4f} to {rates.max():.4f}")
    pair = int(np.clip(np.searchsorted(logs, at), 1, len(logs) - 1))  # the segment around (or nearest to) the rate
    slope = (qualities[pair] - qualities[pair - 1]) / (logs[pair] - logs[pair - 1])
    return float(quality - (qualities[pair - 1] + slope * (at - logs[pair - 1])))


def closest_setting(
    codec: Codec, image: np.ndarray, target_bpp: float, settings: Sequence[float] | None = None
) -> tuple[float, bytes]:
    """The setting whose file of ``image`` is closest in rate to ``target_bpp``, and that file.

    ``settings`` defaults to the codec's own sweep; of equally close settings the first wins.
    This is how codecs are compared at equal rate: each one's file nearest a given size.
    """
    settings = getattr(codec, "settings", None) if settings is None else settings
    if settings is None or len(settings) == 0:
        raise ValueError(f"no settings to search for {type(codec).__name__}: pass settings")
    files = {setting: codec.encode(image, setting) for setting in settings}
    setting = min(files, key=lambda s: abs(bpp(files[s], image.shape) - target_bpp))
    return setting, files[setting]


def rd_cost(rate: float, quality: float, lmbda: float) -> float:
    """The rate–distortion cost ``R + λ·D`` of a point: ``rate`` in bpp, ``quality`` the PSNR in dB.

    ``D`` is the MSE on the 0–255 scale, ``255² · 10^(-PSNR/10)``: the convention of the book's
    λ values (:func:`nicbook.nn.models.rd_loss`), so a model trained with λ minimises this.
    """
    return float(rate + lmbda * 255.0**2 * 10.0 ** (-quality / 10.0))


def coded_point(
    data: bytes, image: np.ndarray, decode: Callable[[bytes], np.ndarray], lmbda: float
) -> tuple[float, float, float]:
    """``(bpp, PSNR, R + λD)`` of a file of ``image``: its real size, its decoding's PSNR, and their :func:`rd_cost`."""
    rate, quality = bpp(data, image.shape), psnr(image, decode(data))
    return rate, quality, rd_cost(rate, quality, lmbda)


def neural_records(
    models: Sequence[FactorizedPrior | ScaleHyperprior],
    images: Sequence[np.ndarray],
    names: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, list[dict]]:
    """Every model's ``.nic`` files of every image, measured: ``{model.name: one record per image}``.

    A factorized model codes each image twice, with tables fitted to it (the default of
    :func:`nicbook.codec.compress`) and with the model's own tables (``adaptive=False``). A record
    holds ``image`` (its name), ``bytes`` and ``bpp`` of the fitted file, ``static_bpp`` and
    ``file_bits`` of the other, ``psnr`` and ``decoded`` (the decoded image, the same from either
    file), the integer latents ``symbols``, and the payload bits of both files
    (``adaptive_payload_bits``, ``payload_bits``) beside ``estimate_bits``, the model's rate
    estimate ``-Σ log2 P`` of the latents.

    A hyperprior model writes one file per image, whose numbers fill both sets of fields;
    ``symbols`` is then its :class:`~nicbook.codec.hyperprior.HyperLatents`, and the record adds
    the payload bits of the side information and of the latents apart (``side_bits``,
    ``latent_bits``) and the model's estimate of each (``side_estimate_bits``,
    ``latent_estimate_bits``).
    """
    from nicbook import codec  # torch is loaded only when neural models are measured
    from nicbook.nn.models import ScaleHyperprior

    if len(images) == 0:
        raise ValueError("need at least one image to measure a model")
    names = [f"image {index}" for index in range(len(images))] if names is None else list(names)
    if len(names) != len(images):
        raise ValueError("names must match images one to one")
    results: dict[str, list[dict]] = {}
    for model in tqdm(models, desc="models", disable=not progress, file=sys.stderr):
        if model.name in results:
            raise ValueError(f"two models are named {model.name!r}: records are keyed by name")
        records = []
        for name, image in zip(names, images):
            if isinstance(model, ScaleHyperprior):
                records.append(_hyperprior_record(model, image, name))
                continue
            fitted = codec.compress(image, model)
            static = codec.compress(image, model, adaptive=False)
            header, symbols, _ = codec.decode_latents(static, model)
            decoded = codec.reconstruct(header, symbols, model)
            records.append({
                "image": name,
                "bytes": len(fitted),
                "bpp": bpp(fitted, image.shape),
                "static_bpp": bpp(static, image.shape),
                "psnr": psnr(image, decoded),
                "decoded": decoded,
                "symbols": symbols,
                "file_bits": 8 * len(static),
                "payload_bits": 8 * header.payload_length,
                "adaptive_payload_bits": 8 * codec.read_header(fitted).payload_length,
                "estimate_bits": float(model.entropy_model.channel_bits(symbols).sum()),
            })
        results[model.name] = records
    return results


def _hyperprior_record(model: ScaleHyperprior, image: np.ndarray, name: str) -> dict:
    """:func:`neural_records`' record of one image's file written by a hyperprior model."""
    from nicbook import codec

    data = codec.compress(image, model)
    header, latents, _ = codec.decode_latents(data, model)
    decoded = codec.reconstruct(header, latents, model)
    side_estimate, latent_estimate = codec.hyperprior.estimated_bits(model, latents)
    payload_bits = 8 * header.payload_length
    return {
        "image": name,
        "bytes": len(data),
        "bpp": bpp(data, image.shape),
        "static_bpp": bpp(data, image.shape),
        "psnr": psnr(image, decoded),
        "decoded": decoded,
        "symbols": latents,
        "file_bits": 8 * len(data),
        "payload_bits": payload_bits,
        "adaptive_payload_bits": payload_bits,
        "side_bits": 8 * latents.side_bytes,
        "latent_bits": 8 * latents.latent_bytes,
        "side_estimate_bits": side_estimate,
        "latent_estimate_bits": latent_estimate,
        "estimate_bits": side_estimate + latent_estimate,
    }


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
