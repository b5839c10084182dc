"""Training the book's models: configuration, loop, checkpoints, and ``nicbook train``.

The loop draws random patches of the training photos (never Kodak), minimises
:func:`nicbook.models.rd_loss`, validates on a held-out part of the training photos, and writes
checkpoints and a JSON-lines log to ``out_dir``. It runs on any device (``"auto"`` picks CUDA, then
MPS, then the CPU), optionally in bfloat16 autocast on CUDA, and on several processes with
``torchrun`` (:class:`~torch.nn.parallel.DistributedDataParallel`; gloo on CPU, NCCL on CUDA).

Several processes: ``torchrun --nproc_per_node 4 -m nicbook train --out runs/q4 ...`` (each rank
draws its own patches; the effective batch is ``world size × batch_size``).

Reproducibility: before step ``s`` on rank ``r`` the torch generators are seeded from
``(seed, r, s)``, so patches and quantization noise depend only on these three numbers. A run that
is stopped and resumed from a checkpoint therefore ends with exactly the weights of an
uninterrupted run.

Checkpoints hold plain tensors, dicts, strings and numbers only, and are read with
``torch.load(weights_only=True)``: a file that would run code when unpickled is refused.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from nicbook.data import PatchDataset, train_validation_split, training_image_paths
from nicbook.errors import NicbookError
from nicbook.models import Autoencoder, FactorizedPrior, build_model, rd_loss

__all__ = [
    "CHECKPOINT_NAME",
    "TrainConfig",
    "evaluate_patches",
    "fit",
    "load_checkpoint",
    "model_from_checkpoint",
    "register_cli",
    "resolve_device",
    "save_checkpoint",
]

#: File name of the latest checkpoint inside a run's output folder.
CHECKPOINT_NAME = "checkpoint.pt"
#: File name of the JSON-lines training log inside a run's output folder.
LOG_NAME = "log.jsonl"
#: Seed stream of the validation patches, apart from every rank's training stream.
_VALIDATION_STREAM = 2**31 - 1
_CHECKPOINT_FORMAT = "nicbook-checkpoint"
_CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in its checkpoints).

    ``architecture`` is ``"factorized"`` (:class:`~nicbook.models.FactorizedPrior`) or
    ``"autoencoder"`` (the distortion-only :class:`~nicbook.models.Autoencoder`, whose loss is
    ``lmbda · MSE``). ``lmbda`` follows the convention of :func:`nicbook.models.rd_loss` (MSE on
    the 0–255 scale).
    ``steps`` counts optimiser steps in total, including those before a resume.
    ``init_from`` starts a new run from another run's weights (fine-tuning a trained model to
    another λ); it is ignored when ``out_dir`` already holds a checkpoint to resume.
    ``lr_drop_at`` is the step from which the learning rate is ``lr / 10`` (0: never); a short
    stretch at the lower rate at the end of a run settles the weights.
    """

    architecture: str = "factorized"
    N: int = 128
    M: int = 192
    lmbda: float = 0.0130
    steps: int = 100_000
    batch_size: int = 8
    patch_size: int = 128
    lr: float = 1e-4
    lr_drop_at: int = 0
    quantization: str = "noise"
    seed: int = 0
    device: str = "auto"
    out_dir: str | None = None
    init_from: str | None = None
    amp: bool = False
    validation_fraction: float = 0.05
    validation_patches: int = 16
    validation_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 50
    clip_grad_norm: float = 1.0


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if present, else Apple MPS, else the CPU; any other name is passed to torch."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}: {error}") from error


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Autoencoder,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
    config: TrainConfig | None = None,
    parameter_dtype: torch.dtype | None = None,
) -> None:
    """Write model weights (with fresh coding tables), optimiser state and progress to ``path``.

    ``parameter_dtype`` stores the parameters in another precision (zoo files use float16);
    buffers such as the coding tables are kept as they are. The file is written next to ``path``
    first and then renamed, so an interrupted save never leaves a truncated checkpoint behind.
    """
    if isinstance(model, FactorizedPrior):
        model.entropy_model.update_tables()
    parameters = {key for key, _ in model.named_parameters()}
    weights = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        weights[key] = tensor.to(parameter_dtype) if parameter_dtype and key in parameters else tensor
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
        state["train_config"] = asdict(config)
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
    config = TrainConfig(**state["train_config"]) if "train_config" in state else None
    target = target_dir / CHECKPOINT_NAME
    model = model_from_checkpoint(state)
    save_checkpoint(target, model, step=state["step"], config=config, parameter_dtype=torch.float16)
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
    return state


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


# --------------------------------------------------------------------------- the loop


def _step_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _training_batch(
    dataset: PatchDataset, batch_size: int, seed: int, rank: int, step: int
) -> torch.Tensor:
    """Patches for ``step`` on ``rank``; also seeds torch so the step's quantization noise is fixed."""
    torch.manual_seed(_step_seed(seed, rank, step))
    items = torch.randint(0, len(dataset), (batch_size,)).tolist()
    return torch.stack([dataset[item] for item in items])


def _validation_batch(paths: list[Path], config: TrainConfig) -> torch.Tensor:
    """A fixed set of patches of the held-out photos (the same for every validation round)."""
    dataset = PatchDataset(paths, config.patch_size)
    torch.manual_seed(_step_seed(config.seed, _VALIDATION_STREAM, 0))
    return torch.stack([dataset[item % len(dataset)] for item in range(config.validation_patches)])


def _split_paths(paths: list[Path], fraction: float) -> tuple[list[Path], list[Path]]:
    """Held-out split of the training photos; with a single photo it serves both roles."""
    train, validation = train_validation_split(paths, fraction)
    if not validation:
        train, validation = (train[:-1], train[-1:]) if len(train) > 1 else (train, train)
    if not train:
        train = validation
    return train, validation


class _Distributed:
    """Rank and world size from torchrun's environment; starts the process group when world > 1.

    On CUDA each process takes the GPU of its local rank and NCCL; elsewhere gloo.
    """

    def __init__(self, device: torch.device) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = device
        self.started = False
        if self.world_size > 1 and device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.started = True

    def wrap(self, model: Autoencoder) -> torch.nn.Module:
        """The model itself, or DDP around it: gradients averaged, buffers (tables) left to each rank."""
        if self.world_size == 1:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # newer torch renames broadcast_buffers
            return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        if self.started:
            dist.destroy_process_group()


def _log(path: Path | None, record: dict) -> None:
    if path is not None:
        with path.open("a") as file:
            file.write(json.dumps(record) + "\n")


def _drop_log_after(path: Path, step: int) -> None:
    """Forget the log lines of steps after ``step``: a resumed run repeats the steps that an
    interrupted one logged after its last checkpoint, and each step should appear once."""
    if path.is_file():
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for line in lines if json.loads(line)["step"] <= step))


def _load_weights(path: Path, model: Autoencoder, advice: str) -> dict:
    """Copy the weights of the checkpoint at ``path`` into ``model``; returns the checkpoint."""
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


def _resume(config: TrainConfig, model: Autoencoder, optimizer: torch.optim.Optimizer) -> int:
    """Resume from ``out_dir``'s checkpoint, else start from ``init_from``'s weights; the first step."""
    out_dir = Path(config.out_dir) if config.out_dir else None
    if out_dir is not None and (out_dir / CHECKPOINT_NAME).is_file():
        state = _load_weights(out_dir / CHECKPOINT_NAME, model, "use another --out folder")
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
        return int(state["step"])
    if config.init_from:
        _load_weights(Path(config.init_from), model, "pass --N and --M of that model")
    return 0


def fit(config: TrainConfig, paths: list[Path] | None = None, progress: bool = True) -> Autoencoder:
    """Train (or resume training) the model ``config`` describes; returns it in eval mode.

    ``paths`` defaults to :func:`nicbook.data.training_image_paths`; a stable fraction of them
    (``validation_fraction``) is held out for validation. With ``out_dir`` set, an existing
    checkpoint there is resumed and a new one written every ``checkpoint_every`` steps and at the end.
    """
    group = _Distributed(resolve_device(config.device))
    device = group.device
    out_dir = Path(config.out_dir) if config.out_dir else None
    if out_dir is not None and group.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    train_paths, validation_paths = _split_paths(
        list(paths or training_image_paths()), config.validation_fraction
    )
    torch.manual_seed(config.seed)
    try:
        model = build_model(
            {"architecture": config.architecture, "N": config.N, "M": config.M,
             "quantization": config.quantization}  # fmt: skip
        ).to(device)
    except ValueError as error:
        raise NicbookError(str(error)) from error
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    start = _resume(config, model, optimizer)  # loading moves the optimiser state to the device
    if out_dir is not None and group.is_main:
        _drop_log_after(out_dir / LOG_NAME, start)
    dataset = PatchDataset(train_paths, config.patch_size)
    validation = _validation_batch(validation_paths, config).to(device) if group.is_main else None
    try:
        _run_steps(
            config,
            group.wrap(model),
            optimizer,
            dataset,
            validation,
            start,
            out_dir if group.is_main else None,
            group.rank,
            progress and group.is_main,
        )
    finally:
        group.close()
    if isinstance(model, FactorizedPrior):
        model.entropy_model.update_tables()
    return model.eval()


def _run_steps(
    config: TrainConfig,
    trained: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    dataset: PatchDataset,
    validation: torch.Tensor | None,
    start: int,
    out_dir: Path | None,
    rank: int,
    progress: bool,
) -> None:
    """Steps ``start .. config.steps - 1``; logging, validation and checkpoints when ``out_dir`` is set."""
    model = trained.module if isinstance(trained, DistributedDataParallel) else trained
    device = next(model.parameters()).device
    log_path = out_dir / LOG_NAME if out_dir is not None else None
    autocast = torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda"
    )
    bar = tqdm(
        range(start, config.steps),
        initial=start,
        total=config.steps,
        disable=not progress,
        desc="training",
    )
    started = time.perf_counter()
    model.train()
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = config.lr / 10 if 0 < config.lr_drop_at <= step else config.lr
        batch = _training_batch(dataset, config.batch_size, config.seed, rank, step).to(device)
        with autocast:
            losses = rd_loss(trained(batch), batch, config.lmbda)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if config.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
        optimizer.step()
        done = step + 1
        last = done == config.steps
        if done % config.log_every == 0 or last:
            values = {key: round(float(value.detach()), 5) for key, value in losses.items()}
            bar.set_postfix(loss=values["loss"], bpp=values["bpp"], psnr=values["psnr"])
            seconds = round(time.perf_counter() - started, 2)
            _log(log_path, {"step": done, "split": "train", **values, "seconds": seconds})
        if validation is not None and (done % config.validation_every == 0 or last):
            _log(
                log_path,
                {
                    "step": done,
                    "split": "validation",
                    **evaluate_patches(model, validation, config.lmbda),
                },
            )
        if out_dir is not None and (done % config.checkpoint_every == 0 or last):
            save_checkpoint(out_dir / CHECKPOINT_NAME, model, optimizer, done, config)


@torch.no_grad()
def evaluate_patches(model: Autoencoder, patches: torch.Tensor, lmbda: float) -> dict[str, float]:
    """Loss, estimated bpp and PSNR of rounded latents on ``patches`` (eval mode, restored after)."""
    was_training = model.training
    model.eval()
    losses = rd_loss(model(patches), patches, lmbda)
    model.train(was_training)
    return {key: round(float(value), 5) for key, value in losses.items()}


# --------------------------------------------------------------------------- command line


def register_cli(subparsers) -> None:
    """Add ``nicbook train``."""
    defaults = TrainConfig()
    parser = subparsers.add_parser(
        "train",
        help="train a model (factorized prior by default) on $NICBOOK_DATA/train",
        description="Train a model; resumes when OUT already holds a checkpoint.",
    )
    parser.add_argument("--out", required=True, help="folder for checkpoint.pt and log.jsonl")
    parser.add_argument(
        "--lmbda", type=float, default=defaults.lmbda, help="rate-distortion trade-off (MSE on 0-255)"
    )
    parser.add_argument("--steps", type=int, default=defaults.steps, help="total optimiser steps")
    parser.add_argument(
        "--data", default=None, help="folder of training photos (default $NICBOOK_DATA/train)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    for field in fields(TrainConfig):
        if field.name in {"lmbda", "steps", "out_dir", "init_from", "amp"}:
            continue
        parser.add_argument(
            "--" + field.name.replace("_", "-"), type=type(field.default), default=field.default
        )
    parser.add_argument(
        "--init-from", default=None, help="checkpoint whose weights start a new run (fine-tuning)"
    )
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    parser.set_defaults(func=_cli_train)


def _cli_train(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    options = {
        field.name: getattr(args, field.name)
        for field in fields(TrainConfig)
        if hasattr(args, field.name)
    }
    config = TrainConfig(**{**options, "out_dir": args.out})
    if config.steps < 1 or config.batch_size < 1 or config.patch_size < 16 or config.patch_size % 16:
        raise ValueError("steps and batch size must be positive, patch size a multiple of 16")
    if not math.isfinite(config.lmbda) or config.lmbda < 0:
        raise ValueError("lmbda must be a non-negative number")
    paths = training_image_paths(args.data) if args.data else None
    fit(config, paths, progress=not args.no_progress)
    print(f"checkpoint: {Path(args.out) / CHECKPOINT_NAME}")
    return 0
