"""Named, pre-trained neural codecs: the model zoo.

Every zoo model has a name ``<architecture>-q<quality>``, e.g. ``factorized-q4``; the quality
picks the λ it was trained for (higher quality, larger λ, more bits). Trained weights ship as
package data in ``nicbook/weights/``: one fp16 file per model plus ``manifest.json``::

    {"format": 1, "models": [{"name": "factorized-q4", "file": "factorized-q4.pt",
                              "sha256": "...", "lmbda": 0.013, "N": 128, "M": 192}]}

A file is loaded only after its SHA-256 matches the manifest, and with
``torch.load(weights_only=True)``. This module only loads; :mod:`nicbook.release` writes the
files and their manifest entries (``nicbook export``).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from nicbook.errors import ChecksumError, DataNotFoundError, NicbookError
from nicbook.nn.checkpoints import model_from_checkpoint
from nicbook.nn.checkpoints import load_checkpoint as read_checkpoint
from nicbook.nn.models import Autoencoder, FactorizedPrior, ScaleHyperprior

__all__ = [
    "CONFIGURATIONS",
    "MANIFEST_NAME",
    "available",
    "configuration",
    "load",
    "load_by_name",
    "load_checkpoint",
    "manifest_entries",
    "released_curve",
    "model_name",
    "shipped",
    "verified_entry",
    "weights_dir",
    "weights_path",
]

#: Architecture -> quality -> training configuration. The λ values are the ladder of the
#: literature (MSE on the 0–255 scale, qualities 1–8) and one rung below it (quality 0) for rates
#: near 0.1 bpp. Every model keeps N=128, M=192, small enough to train on a CPU; the hyperpriors
#: share them so that they start from the transforms of the factorized model of their quality.
_LADDER = (0.0009, 0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)
CONFIGURATIONS: dict[str, dict[int, dict]] = {
    architecture: {quality: {"lmbda": lmbda, "N": 128, "M": 192} for quality, lmbda in enumerate(_LADDER)}
    for architecture in ("factorized", "hyperprior", "mean-scale")
}
MANIFEST_NAME = "manifest.json"


def weights_dir() -> Path:
    """The package folder that holds shipped weights and their manifest."""
    return Path(str(resources.files("nicbook") / "weights"))


def model_name(architecture: str, quality: int) -> str:
    """The zoo name of a model, as written into ``.nic`` files: ``factorized-q4``."""
    configuration(architecture, quality)
    return f"{architecture}-q{quality}"


def configuration(architecture: str, quality: int) -> dict:
    """The training configuration (λ, N, M) of a zoo model; unknown names raise :class:`NicbookError`."""
    if architecture not in CONFIGURATIONS:
        raise NicbookError(f"unknown model {architecture!r}; the zoo has: {', '.join(CONFIGURATIONS)}")
    qualities = CONFIGURATIONS[architecture]
    if quality not in qualities:
        raise NicbookError(
            f"{architecture} has qualities {min(qualities)}..{max(qualities)}, not {quality}"
        )
    return qualities[quality]


def manifest_entries(folder: Path | None = None) -> list[dict]:
    """The entries of the weights manifest in ``folder`` (default :func:`weights_dir`); none without one."""
    path = (folder or weights_dir()) / MANIFEST_NAME
    if not path.is_file():
        return []
    try:
        manifest = json.loads(path.read_text())
        return [dict(entry) for entry in manifest["models"]]
    except (ValueError, KeyError, TypeError) as error:
        raise NicbookError(f"{path}: unreadable weights manifest ({error})") from error


def available(folder: Path | None = None) -> list[dict]:
    """Every configured model with ``name``, ``architecture``, ``quality``, ``lmbda``, ``N``, ``M``, ``shipped``."""
    shipped = {entry["name"] for entry in manifest_entries(folder)}
    return [
        {
            "name": model_name(architecture, quality),
            "architecture": architecture,
            "quality": quality,
            **configuration,
            "shipped": model_name(architecture, quality) in shipped,
        }
        for architecture, qualities in CONFIGURATIONS.items()
        for quality, configuration in qualities.items()
    ]


def shipped(architecture: str | None = None, folder: Path | None = None) -> list[dict]:
    """Manifest entries of the shipped models (of ``architecture``), by quality.

    Each has ``name``, ``architecture``, ``quality``, ``lmbda``, ``N``, ``M`` and what the release
    recorded: ``steps``, ``training_hours``, ``recipe``, ``data``, ``hardware`` and ``kodak``
    (bpp, PSNR and per-image results on the Kodak images).
    """
    entries = []
    for entry in manifest_entries(folder):
        name, _, quality = entry["name"].rpartition("-q")
        if architecture in (None, name):
            entries.append({"architecture": name, "quality": int(quality), **entry})
    return sorted(entries, key=lambda entry: (entry["architecture"], entry["quality"]))


def released_curve(architecture: str, folder: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Kodak RD curve of the shipped models of ``architecture`` (bpps, PSNRs, by rate), from the
    points their manifest entries recorded at release."""
    points = sorted((entry["kodak"]["bpp"], entry["kodak"]["psnr"]) for entry in shipped(architecture, folder))
    return np.array([rate for rate, _ in points]), np.array([quality for _, quality in points])


def verified_entry(name: str, folder: Path) -> dict:
    """The manifest entry of the shipped model ``name``, once its file matches the recorded checksum."""
    entries = {entry["name"]: entry for entry in manifest_entries(folder)}
    if name not in entries:
        shipped = ", ".join(sorted(entries)) or "none yet"
        raise DataNotFoundError(
            f"weights for {name} are not shipped with this version of nicbook (shipped: {shipped}); "
            "train a model with `nicbook train` and pass its checkpoint instead"
        )
    path = folder / entries[name]["file"]
    if not path.is_file():
        raise DataNotFoundError(f"weights file {path.name} for {name} is missing from {folder}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entries[name].get("sha256"):
        raise ChecksumError(f"{path.name}: SHA-256 {digest[:16]}... does not match the manifest")
    return entries[name]


def weights_path(architecture: str = "factorized", quality: int = 4, folder: Path | None = None) -> Path:
    """The weights file of the shipped model ``architecture`` at ``quality``, checked against the manifest.

    What a training run passes as ``init_from`` to fine-tune a shipped model. Raises
    :class:`DataNotFoundError` when the model is not shipped and :class:`ChecksumError` when the
    file does not match its recorded SHA-256.
    """
    folder = folder or weights_dir()
    return folder / verified_entry(model_name(architecture, quality), folder)["file"]


def load(
    architecture: str = "factorized",
    quality: int = 4,
    device: str | torch.device = "cpu",
    folder: Path | None = None,
) -> FactorizedPrior | ScaleHyperprior:
    """The shipped model ``architecture`` at ``quality``, in eval mode with its coding tables.

    Raises :class:`DataNotFoundError` when its weights are not shipped (the message lists those
    that are) and :class:`ChecksumError` when the file does not match the manifest.
    """
    path = weights_path(architecture, quality, folder)
    model = model_from_checkpoint(read_checkpoint(path))
    if model.architecture != architecture:
        raise NicbookError(f"{path.name} holds a {model.architecture} model, not a {architecture} model")
    model.name = model_name(architecture, quality)
    return model.to(device)


def load_by_name(name: str, device: str | torch.device = "cpu") -> FactorizedPrior | ScaleHyperprior:
    """:func:`load` from a zoo name such as ``factorized-q4`` (the name stored in ``.nic`` files)."""
    architecture, _, quality = name.rpartition("-q")
    if not architecture or not quality.isdigit():
        raise NicbookError(
            f"model {name!r} is not a zoo model; decode with the checkpoint it was encoded with (--checkpoint)"
        )
    return load(architecture, int(quality), device)


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Autoencoder:
    """A model from a user checkpoint written by ``nicbook train`` (read with ``weights_only=True``)."""
    return model_from_checkpoint(read_checkpoint(path)).to(device)
