"""Named, pre-trained neural codecs: the model zoo.

Every zoo model has a name ``<architecture>-q<quality>``, e.g. ``factorized-q4``; the quality
picks the λ it was trained for (higher quality, larger λ, more bits). Trained weights ship as
package data in ``nicbook/weights/``: one fp16 file per model plus ``manifest.json``::

    {"format": 1, "models": [{"name": "factorized-q4", "file": "factorized-q4.pt",
                              "sha256": "...", "lmbda": 0.013, "N": 128, "M": 192}]}

A file is loaded only after its SHA-256 matches the manifest, and with
``torch.load(weights_only=True)``. :func:`export_weights` writes such files from a training
checkpoint; ``nicbook export RUN --quality Q --kodak DIR`` does so for a finished run and records
in the manifest how it was trained (:func:`training_record`) and the RD point it reaches on Kodak.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import resources
from pathlib import Path

import torch

from nicbook.errors import ChecksumError, DataNotFoundError, NicbookError
from nicbook.models import Autoencoder, FactorizedPrior
from nicbook.train import CHECKPOINT_NAME, LOG_NAME, model_from_checkpoint, save_checkpoint
from nicbook.train import load_checkpoint as read_checkpoint

__all__ = [
    "CONFIGURATIONS",
    "available",
    "export_weights",
    "load",
    "load_by_name",
    "load_checkpoint",
    "model_name",
    "register_cli",
    "restore_run",
    "shipped",
    "training_record",
    "weights_dir",
]

#: Architecture -> quality -> training configuration. The λ values are the factorized-prior
#: ladder of the literature (MSE on the 0–255 scale, qualities 1–8) and one rung below it
#: (quality 0) for rates near 0.1 bpp; N=128, M=192 at every quality keeps the models small
#: enough to train on a CPU.
CONFIGURATIONS: dict[str, dict[int, dict]] = {
    "factorized": {
        quality: {"lmbda": lmbda, "N": 128, "M": 192}
        for quality, lmbda in enumerate((0.0009, 0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800))
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


def shipped(architecture: str | None = None, folder: Path | None = None) -> list[dict]:
    """Manifest entries of the shipped models (of ``architecture``), by quality.

    Each has ``name``, ``architecture``, ``quality``, ``lmbda``, ``N``, ``M`` and what the release
    recorded: ``steps``, ``training_hours``, ``recipe``, ``data``, ``hardware`` and ``kodak``
    (bpp, PSNR and per-image results on the Kodak images).
    """
    entries = []
    for entry in _manifest(folder):
        name, _, quality = entry["name"].rpartition("-q")
        if architecture in (None, name):
            entries.append({"architecture": name, "quality": int(quality), **entry})
    return sorted(entries, key=lambda entry: (entry["architecture"], entry["quality"]))


def _verified_entry(name: str, folder: Path) -> dict:
    """The manifest entry of the shipped model ``name``, once its file matches the recorded checksum."""
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
    return entries[name]


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
    path = folder / _verified_entry(name, folder)["file"]
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


def export_weights(
    checkpoint: str | os.PathLike[str],
    quality: int,
    folder: Path | None = None,
    release: dict | None = None,
) -> Path:
    """Turn a training checkpoint into a shipped fp16 weights file and record it in the manifest.

    Parameters are rounded to fp16 first and the coding tables rebuilt from the rounded
    weights, so the shipped tables describe exactly the shipped density. ``release`` adds
    fields to the model's manifest entry (training record, measured RD point).
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
        "N": model.N,
        "M": model.M,
        **(release or {}),
    }
    (folder / _MANIFEST).write_text(
        json.dumps({"format": 1, "models": sorted(entries.values(), key=lambda e: e["name"])}, indent=1)
        + "\n"
    )
    return path


def _sitting_seconds(log_path: Path) -> float:
    """Training time in a run's log: the clock restarts at every sitting, so sum each sitting's last value."""
    total, previous = 0.0, 0.0
    for line in log_path.read_text().splitlines():
        record = json.loads(line)
        if record.get("split") != "train":
            continue
        if record["seconds"] < previous:
            total += previous
        previous = record["seconds"]
    return total + previous


def training_record(run_dir: str | os.PathLike[str]) -> dict:
    """How the model in ``run_dir`` was trained, following ``init_from`` back to the first run.

    Returns ``steps`` (all optimiser steps, fine-tunes included), ``training_hours`` (wall time
    of the training loops, summed from the logs) and ``recipe``: one line per run, oldest first,
    with its λ, steps, starting point and (when not the default 0) seed.
    """
    steps, hours, recipe = 0, 0.0, []
    path: Path | None = Path(run_dir) / CHECKPOINT_NAME
    while path is not None:
        state = read_checkpoint(path)
        if "training_record" in state:  # a shipped model written out by restore_run
            record = state["training_record"]
            steps += int(record["steps"])
            hours += float(record["training_hours"])
            recipe[:0] = list(record["recipe"])
            break
        config = state.get("train_config") or {}
        steps += int(state["step"])
        log = path.parent / LOG_NAME
        hours += _sitting_seconds(log) / 3600 if log.is_file() else 0.0
        start = f" from {Path(config['init_from']).parent.name}" if config.get("init_from") else ""
        recipe.insert(
            0,
            f"{path.parent.name}: λ={config.get('lmbda')}, {state['step']} steps{start}, "
            f"batch {config.get('batch_size')} of {config.get('patch_size')}px patches, "
            f"{config.get('quantization')} proxy, Adam lr {config.get('lr')}"
            + (f" (÷10 from step {config['lr_drop_at']})" if config.get("lr_drop_at") else "")
            + (f", seed {config['seed']}" if config.get("seed") else ""),
        )
        path = Path(config["init_from"]) if config.get("init_from") else None
    return {"steps": steps, "training_hours": round(hours, 2), "recipe": recipe}


def restore_run(quality: int, run_dir: str | os.PathLike[str], architecture: str = "factorized") -> Path:
    """Write the shipped model at ``quality`` out as the checkpoint of the run folder ``run_dir``.

    A run started from it (``nicbook train --init-from RUN_DIR/checkpoint.pt``) trains the shipped
    weights further; the checkpoint carries the model's training record from the manifest, so
    :func:`training_record` of that run, and the manifest entry it is exported with, still count
    the whole chain. Returns the checkpoint's path.
    """
    target = Path(run_dir) / CHECKPOINT_NAME
    if target.exists():
        raise NicbookError(f"{target} exists already; restore into an empty run folder")
    entry = _verified_entry(model_name(architecture, quality), weights_dir())
    state = read_checkpoint(weights_dir() / entry["file"])
    state["training_record"] = {key: entry[key] for key in ("steps", "training_hours", "recipe")}
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    return target


def _cli_restore(args) -> int:
    print(restore_run(args.quality, args.run))
    return 0


def _cli_export(args) -> int:
    from nicbook.codec import evaluate_folder  # the codec module imports the zoo

    release = {
        **training_record(args.run),
        "data": "nicbook training photos ($NICBOOK_DATA/train, 95%; the rest validates); never Kodak",
        "hardware": args.hardware or f"{platform.machine()} {platform.system()}",
    }
    path = export_weights(Path(args.run) / CHECKPOINT_NAME, args.quality, release=release)
    if args.kodak:
        point = evaluate_folder(args.kodak, load("factorized", args.quality), progress=True)
        release["kodak"] = {
            "bpp": round(point["bpp"], 5),
            "psnr": round(point["psnr"], 4),
            "images": {entry["image"]: [entry["bytes"], round(entry["psnr"], 4)] for entry in point["images"]},
        }
        path = export_weights(Path(args.run) / CHECKPOINT_NAME, args.quality, release=release)
    print(f"{path}: {json.dumps({key: value for key, value in release.items() if key != 'kodak'})}")
    if "kodak" in release:
        print(f"Kodak: {release['kodak']['bpp']:.4f} bpp, {release['kodak']['psnr']:.2f} dB")
    return 0


def register_cli(subparsers) -> None:
    """Add ``nicbook export``."""
    parser = subparsers.add_parser(
        "export", help="ship a finished training run as zoo weights (package data)"
    )
    parser.add_argument("run", help="run folder written by `nicbook train`")
    parser.add_argument("--quality", type=int, required=True, help="zoo quality it becomes")
    parser.add_argument("--kodak", default=None, help="Kodak folder: measure and record the RD point")
    parser.add_argument("--hardware", default=None, help="what it was trained on, for the manifest")
    parser.set_defaults(func=_cli_export)
    parser = subparsers.add_parser(
        "restore", help="write a shipped model out as a run folder, to train it further"
    )
    parser.add_argument("quality", type=int, help="zoo quality of the factorized model")
    parser.add_argument("run", help="run folder to create; then `nicbook train --init-from RUN/checkpoint.pt`")
    parser.set_defaults(func=_cli_restore)
