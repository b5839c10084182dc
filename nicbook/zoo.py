"""Named, pre-trained neural codecs: the model zoo.

Every zoo model has a name ``<architecture>-q<quality>``, e.g. ``factorized-q4``; the quality
picks the λ it was trained for (higher quality, larger λ, more bits). Trained weights ship as
package data in ``nicbook/weights/``: one fp16 file per model plus ``manifest.json``::

    {"format": 1, "models": [{"name": "factorized-q4", "file": "factorized-q4.pt",
                              "sha256": "...", "lmbda": 0.013, "N": 128, "M": 192}]}

A file is loaded only after its SHA-256 matches the manifest, and with
``torch.load(weights_only=True)``. :func:`export_weights` writes such files from a training
checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import torch

from nicbook.errors import ChecksumError, DataNotFoundError, NicbookError
from nicbook.models import Autoencoder, FactorizedPrior
from nicbook.train import load_checkpoint as read_checkpoint
from nicbook.train import model_from_checkpoint, save_checkpoint

__all__ = [
    "CONFIGURATIONS",
    "available",
    "export_weights",
    "load",
    "load_by_name",
    "load_checkpoint",
    "model_name",
    "weights_dir",
]

#: Architecture -> quality -> training configuration. The λ values are the factorized-prior
#: ladder of the literature (MSE on the 0–255 scale); N=128, M=192 at every quality keeps the
#: models small enough to train on a CPU.
CONFIGURATIONS: dict[str, dict[int, dict]] = {
    "factorized": {
        quality: {"lmbda": lmbda, "N": 128, "M": 192}
        for quality, lmbda in enumerate((0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483), start=1)
    }
}
_MANIFEST = "manifest.json"


def weights_dir() -> Path:
    """The package folder that holds shipped weights and their manifest."""
    return Path(str(resources.files("nicbook") / "weights"))


def model_name(architecture: str, quality: int) -> str:
    """The zoo name of a model, as written into ``.nic`` files: ``factorized-q4``."""
    _configuration(architecture, quality)
    return f"{architecture}-q{quality}"


def _configuration(architecture: str, quality: int) -> dict:
    if architecture not in CONFIGURATIONS:
        raise NicbookError(f"unknown model {architecture!r}; the zoo has: {', '.join(CONFIGURATIONS)}")
    qualities = CONFIGURATIONS[architecture]
    if quality not in qualities:
        raise NicbookError(
            f"{architecture} has qualities {min(qualities)}..{max(qualities)}, not {quality}"
        )
    return qualities[quality]


def _manifest(folder: Path | None = None) -> list[dict]:
    path = (folder or weights_dir()) / _MANIFEST
    if not path.is_file():
        return []
    try:
        manifest = json.loads(path.read_text())
        return [dict(entry) for entry in manifest["models"]]
    except (ValueError, KeyError, TypeError) as error:
        raise NicbookError(f"{path}: unreadable weights manifest ({error})") from error


def available(folder: Path | None = None) -> list[dict]:
    """Every configured model with ``name``, ``architecture``, ``quality``, ``lmbda``, ``N``, ``M``, ``shipped``."""
    shipped = {entry["name"] for entry in _manifest(folder)}
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


def load(
    architecture: str = "factorized",
    quality: int = 4,
    device: str | torch.device = "cpu",
    folder: Path | None = None,
) -> FactorizedPrior:
    """The shipped model ``architecture`` at ``quality``, in eval mode with its coding tables.

    Raises :class:`DataNotFoundError` when its weights are not shipped (the message lists those
    that are) and :class:`ChecksumError` when the file does not match the manifest.
    """
    name = model_name(architecture, quality)
    folder = folder or weights_dir()
    entries = {entry["name"]: entry for entry in _manifest(folder)}
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
    model = model_from_checkpoint(read_checkpoint(path))
    if not isinstance(model, FactorizedPrior):
        raise NicbookError(f"{path.name} does not hold a factorized-prior model")
    model.name = name
    return model.to(device)


def load_by_name(name: str, device: str | torch.device = "cpu") -> FactorizedPrior:
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


def export_weights(checkpoint: str | os.PathLike[str], quality: int, folder: Path | None = None) -> Path:
    """Turn a training checkpoint into a shipped fp16 weights file and record it in the manifest.

    Parameters are rounded to fp16 first and the coding tables rebuilt from the rounded
    weights, so the shipped tables describe exactly the shipped density.
    """
    folder = Path(folder or weights_dir())
    model = model_from_checkpoint(read_checkpoint(checkpoint))
    if not isinstance(model, FactorizedPrior):
        raise NicbookError("only factorized-prior checkpoints can be exported to the zoo")
    name = model_name(model.architecture, quality)
    model.name = name
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    path = folder / f"{name}.pt"
    save_checkpoint(path, model, parameter_dtype=torch.float16)  # rebuilds the tables first
    entries = {entry["name"]: entry for entry in _manifest(folder)}
    entries[name] = {
        "name": name,
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        **_configuration(model.architecture, quality),
    }
    (folder / _MANIFEST).write_text(
        json.dumps({"format": 1, "models": sorted(entries.values(), key=lambda e: e["name"])}, indent=1)
        + "\n"
    )
    return path
