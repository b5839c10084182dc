"""Releasing models: a finished training run into shipped weights, and a shipped model back into a run.

:func:`export_weights` writes a zoo file (fp16 parameters, coding tables rebuilt from them) and its
manifest entry; :func:`release_model` does so for a run folder and records how it was trained
(:func:`training_record`) and the RD point it reaches on Kodak (``nicbook export``).
:func:`restore_run` writes a shipped model out as a run folder to train it further
(``nicbook restore``). Loading shipped models is :mod:`nicbook.zoo`'s alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import torch

from nicbook import codec
from nicbook.data import write_atomically
from nicbook.errors import NicbookError
from nicbook.evaluation import evaluate_folder
from nicbook.nn.checkpoints import (
    CHECKPOINT_NAME,
    TRANSFORM_PREFIXES,
    model_from_checkpoint,
    save_checkpoint,
    training_seconds,
)
from nicbook.nn.checkpoints import load_checkpoint as read_checkpoint
from nicbook.nn.models import FactorizedPrior, ScaleHyperprior
from nicbook.zoo import (
    MANIFEST_NAME,
    configuration,
    load,
    manifest_entries,
    model_name,
    verified_entry,
    weights_dir,
)

__all__ = ["export_weights", "hyper_path_stages", "release_model", "restore_run", "training_record"]

#: What the shipped models were trained on, as the manifest records it.
TRAINING_DATA = "nicbook training photos ($NICBOOK_DATA/train, 95%; the rest validates); never Kodak"


def export_weights(
    checkpoint: str | os.PathLike[str],
    quality: int,
    folder: Path | None = None,
    release: dict | None = None,
) -> Path:
    """Turn a training checkpoint into a shipped fp16 weights file and record it in the manifest.

    Parameters are rounded to fp16 first and the coding tables rebuilt from the rounded
    weights, so the shipped tables describe exactly the shipped density. A hyperprior whose
    transforms are exactly those of a shipped factorized model (trained on them frozen) names that
    model's file instead of repeating them (``transforms`` in its manifest entry). ``release`` adds
    fields to the model's manifest entry (training record, measured RD point).
    """
    folder = Path(folder or weights_dir())
    model = model_from_checkpoint(read_checkpoint(checkpoint))
    if not isinstance(model, (FactorizedPrior, ScaleHyperprior)):
        raise NicbookError("only factorized-prior and hyperprior checkpoints can be exported to the zoo")
    name = model_name(model.architecture, quality)
    model.name = name
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    path = folder / f"{name}.pt"
    shared = _shipped_transforms(model, folder) if isinstance(model, ScaleHyperprior) else None
    save_checkpoint(path, model, parameter_dtype=torch.float16,
                    transforms_file=folder / shared["file"] if shared else None)  # rebuilds the tables first
    entries = {entry["name"]: entry for entry in manifest_entries(folder)}
    entries[name] = {
        "name": name,
        **({"transforms": shared["name"]} if shared else {}),
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        **configuration(model.architecture, quality),
        "N": model.N,
        "M": model.M,
        **(release or {}),
    }
    manifest = {"format": 1, "models": sorted(entries.values(), key=lambda e: e["name"])}
    write_atomically(folder / MANIFEST_NAME, (json.dumps(manifest, indent=1) + "\n").encode())
    return path


def _shipped_transforms(model: ScaleHyperprior, folder: Path) -> dict | None:
    """The manifest entry of a shipped factorized model in ``folder`` whose transforms are exactly
    ``model``'s (stored as fp16), or None."""
    ours = {key: parameter.detach().cpu().half() for key, parameter in model.named_parameters()
            if key.startswith(TRANSFORM_PREFIXES)}  # fmt: skip
    for entry in manifest_entries(folder):
        if not entry["name"].startswith("factorized-") or not (folder / entry["file"]).is_file():
            continue
        theirs = read_checkpoint(folder / entry["file"])["model"]
        if all(key in theirs and torch.equal(theirs[key], tensor) for key, tensor in ours.items()):
            return entry
    return None


def training_record(run_dir: str | os.PathLike[str]) -> dict:
    """How the model in ``run_dir`` was trained, following ``init_from`` back to the first run.

    Returns ``steps`` (all optimiser steps, fine-tunes included), ``training_hours`` (wall time
    of the training loops, summed from the logs) and ``recipe``: one line per run, oldest first,
    with its λ, steps, starting point and (when not the default 0) seed. A run warm-started with
    the transforms of another (``transforms_from``, a run's checkpoint or a shipped model) counts
    that model's training too. A run that takes the weights of one hyperprior model (``init_from``)
    and the transforms of another model (``transforms_from``) counts the second in full and, of the
    first, the stages that trained its hyper path (:func:`hyper_path_stages`).
    """
    return _checkpoint_record(Path(run_dir) / CHECKPOINT_NAME)


def _checkpoint_record(checkpoint: Path) -> dict:
    steps, hours, recipe = 0, 0.0, []
    path: Path | None = checkpoint
    while path is not None:
        state = read_checkpoint(path)
        record = state.get("training_record") or _shipped_record(path)
        if record is not None:  # a shipped model, or one written out by restore_run
            steps += int(record["steps"])
            hours += float(record["training_hours"])
            recipe[:0] = list(record["recipe"])
            break
        config = state.get("train_config") or {}
        steps += int(state["step"])
        hours += training_seconds(path.parent) / 3600
        weights, transforms = config.get("init_from"), config.get("transforms_from")
        start = f" from {_run_name(Path(weights))}" if weights else ""
        if transforms:
            start += f", transforms from {_run_name(Path(transforms))}"
        recipe.insert(
            0,
            f"{path.parent.name}: λ={config.get('lmbda')}, {state['step']} steps{start}, "
            + (f"hyper path alone, batch {config.get('batch_size')} of {config.get('patch_size')}px crops of "
               "the latents, rounded" if config.get("hyper_path_only") else
               f"batch {config.get('batch_size')} of {config.get('patch_size')}px patches, "
               f"{config.get('quantization')} proxy")
            + f", Adam lr {config.get('lr')}"
            + (f" (÷10 from step {config['lr_drop_at']})" if config.get("lr_drop_at") else "")
            + (f", seed {config['seed']}" if config.get("seed") else ""),
        )
        if weights and transforms:
            stages = hyper_path_stages(Path(weights))
            steps += stages["steps"]
            hours += stages["training_hours"]
            recipe[:0] = stages["recipe"]
        source = transforms or weights
        path = Path(source) if source else None
    return {"steps": steps, "training_hours": round(hours, 2), "recipe": recipe}


def hyper_path_stages(checkpoint: Path) -> dict:
    """The training record of a hyperprior model's own stages: its whole record less that of the
    shipped model whose transforms it started from (the shipped model whose recipe its recipe
    continues). Raises :class:`NicbookError` when no shipped model is such a start."""
    record = _checkpoint_record(checkpoint)
    starts = [
        entry for entry in manifest_entries() + manifest_entries(checkpoint.parent)
        if len(entry.get("recipe", [])) < len(record["recipe"])
        and record["recipe"][: len(entry["recipe"])] == entry["recipe"]
    ]
    if not starts:
        raise NicbookError(f"{checkpoint}: no shipped model whose transforms its training started from")
    start = max(starts, key=lambda entry: len(entry["recipe"]))
    return {
        "steps": record["steps"] - int(start["steps"]),
        "training_hours": round(record["training_hours"] - float(start["training_hours"]), 2),
        "recipe": record["recipe"][len(start["recipe"]):],
    }


def _run_name(checkpoint: Path) -> str:
    """What a recipe calls the model in ``checkpoint``: its run folder, or a shipped model's name."""
    return checkpoint.stem if _shipped_record(checkpoint) else checkpoint.parent.name


def _shipped_record(checkpoint: Path) -> dict | None:
    """The manifest entry of a shipped weights file (its training record), or None for other files."""
    for entry in manifest_entries(checkpoint.parent):
        if entry.get("file") == checkpoint.name and "recipe" in entry:
            return entry
    return None


def restore_run(
    quality: int, run_dir: str | os.PathLike[str], architecture: str = "factorized", folder: Path | None = None
) -> Path:
    """Write the shipped model at ``quality`` out as the checkpoint of the run folder ``run_dir``.

    A run started from it (``nicbook train --init-from RUN_DIR/checkpoint.pt``) trains the shipped
    weights further; the checkpoint carries the model's training record from the manifest, so
    :func:`training_record` of that run, and the manifest entry it is exported with, still count
    the whole chain. ``folder`` is where the shipped weights are (default :func:`nicbook.zoo.weights_dir`).
    Returns the checkpoint's path.
    """
    target = Path(run_dir) / CHECKPOINT_NAME
    if target.exists():
        raise NicbookError(f"{target} exists already; restore into an empty run folder")
    folder = Path(folder or weights_dir())
    entry = verified_entry(model_name(architecture, quality), folder)
    state = read_checkpoint(folder / entry["file"])
    state["training_record"] = {key: entry[key] for key in ("steps", "training_hours", "recipe")}
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    return target


def release_model(
    run_dir: str | os.PathLike[str], quality: int, kodak: str | os.PathLike[str] | None = None,
    hardware: str | None = None, progress: bool = True, folder: Path | None = None,
) -> tuple[Path, dict]:
    """Export the run in ``run_dir`` as the zoo model at ``quality``, with its training record.

    With ``kodak`` (a folder of the Kodak images) the shipped model is measured there first and
    its RD point and per-image results are recorded too. ``folder`` is where the weights go
    (default :func:`nicbook.zoo.weights_dir`). Returns the weights path and the record.
    """
    checkpoint = Path(run_dir) / CHECKPOINT_NAME
    release = {
        **training_record(run_dir),
        "data": TRAINING_DATA,
        "hardware": hardware or f"{platform.machine()} {platform.system()}",
    }
    path = export_weights(checkpoint, quality, folder, release)
    if kodak:
        model = load(read_checkpoint(checkpoint)["model_config"]["architecture"], quality, folder=folder)
        point = evaluate_folder(
            kodak, lambda image: codec.compress(image, model), lambda data: codec.decompress(data, model),
            model.name, progress,
        )
        release["kodak"] = {
            "bpp": round(point["bpp"], 5),
            "psnr": round(point["psnr"], 4),
            "images": {entry["image"]: [entry["bytes"], round(entry["psnr"], 4)] for entry in point["images"]},
        }
        path = export_weights(checkpoint, quality, folder, release)
    return path, release
