"""Checkpoints and training logs: what a run writes to its folder, and reading it back safely.

A run folder holds ``checkpoint.pt`` (weights, optimiser state, step, configuration) and
``log.jsonl`` (one JSON record per logged step). Checkpoints hold plain tensors, dicts, strings
and numbers only, and are read with ``torch.load(weights_only=True)``: a file that would run code
when unpickled is refused. Zoo weights files are checkpoints without optimiser state; a zoo
hyperprior trained on the frozen transforms of a shipped factorized model leaves those out and names
the file that holds them, with its SHA-256 (``transforms_file``), which :func:`load_checkpoint`
reads from the same folder and checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path

import torch

from nicbook.errors import NicbookError
from nicbook.nn.entropy_models import FactorizedEntropyModel
from nicbook.nn.models import Autoencoder, build_model

__all__ = [
    "CHECKPOINT_NAME",
    "LOG_NAME",
    "TRANSFORM_PREFIXES",
    "append_log",
    "drop_log_after",
    "load_checkpoint",
    "load_transforms",
    "load_weights",
    "model_from_checkpoint",
    "read_log",
    "read_training_log",
    "save_checkpoint",
    "save_snapshot",
    "training_seconds",
]

#: File name of the latest checkpoint inside a run's output folder.
CHECKPOINT_NAME = "checkpoint.pt"
#: File name of the JSON-lines training log inside a run's output folder.
LOG_NAME = "log.jsonl"
_CHECKPOINT_FORMAT = "nicbook-checkpoint"
_CHECKPOINT_VERSION = 1
#: The parameter prefixes of the analysis and synthesis transforms (what ``transforms_file`` shares).
TRANSFORM_PREFIXES = ("analysis.", "synthesis.")


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Autoencoder,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
    config: Mapping | None = None,
    parameter_dtype: torch.dtype | None = None,
    transforms_file: str | os.PathLike[str] | None = None,
) -> None:
    """Write model weights (with fresh coding tables), optimiser state and progress to ``path``.

    ``config`` is the run's :class:`~nicbook.nn.training.TrainConfig` (or its dictionary).
    ``parameter_dtype`` stores the parameters in another precision (zoo files use float16);
    buffers such as the coding tables are kept as they are. ``transforms_file``, a checkpoint in
    the same folder whose analysis and synthesis transforms are exactly the model's (once stored),
    is named with its SHA-256 instead of repeating them. The file is written next to ``path``
    first and then renamed, so an interrupted save never leaves a truncated checkpoint behind.
    """
    FactorizedEntropyModel.update_all(model)
    parameters = {key for key, _ in model.named_parameters()}
    weights = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        weights[key] = tensor.to(parameter_dtype) if parameter_dtype and key in parameters else tensor
    reference = None
    if transforms_file is not None:
        shared = Path(transforms_file)
        if shared.parent.resolve() != Path(path).parent.resolve():
            raise NicbookError(f"{shared.name}: a shared transforms file must lie beside {Path(path).name}")
        theirs = load_checkpoint(shared)["model"]
        for key in [key for key in weights if key.startswith(TRANSFORM_PREFIXES)]:
            if key not in theirs or not torch.equal(theirs[key], weights.pop(key)):
                raise NicbookError(f"{shared.name}: its {key} differs from the model's; it cannot share it")
        reference = {"file": shared.name, "sha256": hashlib.sha256(shared.read_bytes()).hexdigest()}
    state = {
        "format": _CHECKPOINT_FORMAT,
        "version": _CHECKPOINT_VERSION,
        "model_config": model.config,
        "model": weights,
        "step": int(step),
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if config is not None:
        state["train_config"] = asdict(config) if is_dataclass(config) else dict(config)
    if reference is not None:
        state["transforms_file"] = reference
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def save_snapshot(run_dir: str | os.PathLike[str], target_dir: str | os.PathLike[str]) -> Path:
    """Copy a run's checkpoint to ``target_dir`` as a snapshot small enough to keep in a repository.

    The snapshot holds the weights in float16 and no optimiser state (a run resumed from it starts
    Adam's moment estimates afresh), plus the run's log. Returns the snapshot's checkpoint path.
    """
    run_dir, target_dir = Path(run_dir), Path(target_dir)
    state = load_checkpoint(run_dir / CHECKPOINT_NAME)
    target = target_dir / CHECKPOINT_NAME
    model = model_from_checkpoint(state)
    save_checkpoint(
        target, model, step=state["step"], config=state.get("train_config"), parameter_dtype=torch.float16
    )
    if (run_dir / LOG_NAME).is_file():
        shutil.copyfile(run_dir / LOG_NAME, target_dir / LOG_NAME)
    return target


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (or a zoo weights file) safely.

    Only tensors and plain containers are unpickled (``weights_only=True``); anything else, a
    file that is not a checkpoint, or a checkpoint of an unknown format raises :class:`NicbookError`.
    """
    path = Path(path)
    if not path.is_file():
        raise NicbookError(f"no checkpoint file at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise NicbookError(
            f"{path.name}: refusing to load a file that is not a plain-tensor checkpoint "
            f"(it would run code when unpickled, or is no checkpoint at all): {_unpickling_reason(error)}"
        ) from error
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as error:
        raise NicbookError(f"{path.name}: not a readable torch checkpoint ({error})") from error
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise NicbookError(f"{path.name}: not a nicbook checkpoint")
    if state.get("version") != _CHECKPOINT_VERSION:
        raise NicbookError(f"{path.name}: unsupported checkpoint version {state.get('version')!r}")
    if not isinstance(state.get("model"), dict) or not isinstance(state.get("model_config"), dict):
        raise NicbookError(f"{path.name}: checkpoint lacks model weights or configuration")
    if "transforms_file" in state:
        _add_shared_transforms(path, state, map_location)
    return state


def _add_shared_transforms(path: Path, state: dict, map_location: str | torch.device) -> None:
    """Put the transforms that ``state`` shares with a file beside ``path`` into its weights."""
    reference = state.pop("transforms_file")
    if not isinstance(reference, dict) or not isinstance(reference.get("file"), str):
        raise NicbookError(f"{path.name}: malformed reference to a transforms file")
    shared = path.parent / Path(reference["file"]).name
    if not shared.is_file():
        raise NicbookError(f"{path.name}: its transforms file {shared.name} is missing")
    if hashlib.sha256(shared.read_bytes()).hexdigest() != reference.get("sha256"):
        raise NicbookError(f"{path.name}: its transforms file {shared.name} has changed since it was written")
    theirs = torch.load(shared, map_location=map_location, weights_only=True)
    if not isinstance(theirs, dict) or not isinstance(theirs.get("model"), dict) or "transforms_file" in theirs:
        raise NicbookError(f"{path.name}: {shared.name} is not a checkpoint with its own transforms")
    state["model"].update({key: tensor for key, tensor in theirs["model"].items() if key.startswith(TRANSFORM_PREFIXES)})


def _unpickling_reason(error: Exception) -> str:
    """The line of torch's long weights-only message that names what was refused."""
    boilerplate = (
        "Weights only load failed",
        "Please file an issue",
        "Check the documentation",
        "WeightsUnpickler error",
    )
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith(boilerplate)]
    return (reasons or lines or [type(error).__name__])[0][:200]


def model_from_checkpoint(state: dict) -> Autoencoder:
    """The model described by a loaded checkpoint, weights (and coding tables) in place, in eval mode."""
    try:
        model = build_model(state["model_config"])
        weights = {
            name: tensor.float() if tensor.is_floating_point() else tensor
            for name, tensor in state["model"].items()
        }
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as error:
        raise NicbookError(f"checkpoint weights do not fit its model configuration: {error}") from error
    return model.eval()


def load_transforms(path: Path, model: Autoencoder) -> dict:
    """Copy the analysis and synthesis transforms of the checkpoint at ``path`` into ``model``.

    The checkpoint may hold any architecture with the same ``N`` and ``M`` (a trained factorized
    model warm-starts a hyperprior); anything else raises :class:`NicbookError`. Returns the checkpoint.
    """
    state = load_checkpoint(path)
    saved = state["model_config"]
    if (saved.get("N"), saved.get("M")) != (model.N, model.M):
        raise NicbookError(
            f"{path} holds transforms with N={saved.get('N')}, M={saved.get('M')}, "
            f"not N={model.N}, M={model.M}: pass --N and --M of that model"
        )
    transforms = {
        key: tensor.float()
        for key, tensor in state["model"].items()
        if key.startswith(TRANSFORM_PREFIXES)
    }
    model.load_state_dict(transforms, strict=False)
    return state


def load_weights(path: Path, model: Autoencoder, advice: str) -> dict:
    """Copy the weights of the checkpoint at ``path`` into ``model``; returns the checkpoint.

    A checkpoint of another architecture or size raises :class:`NicbookError` ending in ``advice``.
    """
    state = load_checkpoint(path)
    saved = state["model_config"]
    found = (saved.get("architecture"), saved.get("N"), saved.get("M"))
    if found != (model.architecture, model.N, model.M):
        raise NicbookError(
            f"{path} holds an N={saved.get('N')}, M={saved.get('M')} {saved.get('architecture')} model, "
            f"not N={model.N}, M={model.M} {model.architecture}: {advice}"
        )
    model.load_state_dict({key: tensor.float() if tensor.is_floating_point() else tensor
                           for key, tensor in state["model"].items()})
    return state


# --------------------------------------------------------------------------- training logs


def read_log(path: str | os.PathLike[str]) -> list[dict]:
    """The records of a JSON-lines training log, in the order written (blank lines skipped)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def append_log(path: Path | None, record: dict) -> None:
    """Add one record to the log at ``path`` (nothing when ``path`` is None)."""
    if path is not None:
        with path.open("a") as file:
            file.write(json.dumps(record) + "\n")


def drop_log_after(path: Path, step: int) -> None:
    """Forget the log records of steps after ``step``: a resumed run repeats the steps that an
    interrupted one logged after its last checkpoint, and each step should appear once."""
    if path.is_file():
        kept = [record for record in read_log(path) if record["step"] <= step]
        path.write_text("".join(json.dumps(record) + "\n" for record in kept))


def read_training_log(run_dir: str | os.PathLike[str]) -> dict[str, list[dict]]:
    """The log a run wrote to ``run_dir``, split by ``split`` (``"train"`` and ``"validation"`` records)."""
    records: dict[str, list[dict]] = {}
    for record in read_log(Path(run_dir) / LOG_NAME):
        records.setdefault(record["split"], []).append(record)
    return records


def training_seconds(run_dir: str | os.PathLike[str]) -> float:
    """Wall time of a run's training loops: the clock restarts at every sitting, so each sitting's
    last value counts. 0 when the run has no log."""
    path = Path(run_dir) / LOG_NAME
    if not path.is_file():
        return 0.0
    total, previous = 0.0, 0.0
    for record in read_training_log(run_dir).get("train", []):
        if record["seconds"] < previous:
            total += previous
        previous = record["seconds"]
    return total + previous
