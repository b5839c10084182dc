"""Training the book's models: the loop, validation, several processes.

The loop draws random patches of the training photos (never Kodak), minimises
:func:`nicbook.nn.models.rd_loss`, validates on a held-out part of the training photos, and writes
checkpoints and a JSON-lines log to ``out_dir``. It runs on any device (``"auto"`` picks CUDA, then
MPS, then the CPU), optionally in bfloat16 autocast on CUDA, and on several processes with
``torchrun`` (:class:`~torch.nn.parallel.DistributedDataParallel`; gloo on CPU, NCCL on CUDA).

Several processes: ``torchrun --nproc_per_node 4 -m nicbook train --out runs/q4 ...`` (each rank
draws its own patches; the effective batch is ``world size × batch_size``).

Reproducibility: before step ``s`` on rank ``r`` the torch generators are seeded from
``(seed, r, s)``, so patches and quantization noise depend only on these three numbers. A run that
is stopped and resumed from a checkpoint therefore ends with exactly the weights of an
uninterrupted run.

Checkpoints and logs are written and read by :mod:`nicbook.nn.checkpoints`.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from nicbook.data import train_validation_split, training_image_paths
from nicbook.errors import NicbookError
from nicbook.nn.checkpoints import (
    CHECKPOINT_NAME,
    LOG_NAME,
    append_log,
    drop_log_after,
    load_transforms,
    load_weights,
    save_checkpoint,
)
from nicbook.nn.config import TrainConfig, check_config, learning_rate, step_seed
from nicbook.nn.entropy_models import FactorizedEntropyModel
from nicbook.nn.latent_training import fit_hyper_path
from nicbook.nn.models import Autoencoder, build_model, rd_loss
from nicbook.nn.ops import resolve_device
from nicbook.nn.tensors import PatchDataset

__all__ = ["TrainConfig", "evaluate_patches", "fit"]

#: Seed stream of the validation patches, apart from every rank's training stream.
_VALIDATION_STREAM = 2**31 - 1


def _training_batch(
    dataset: PatchDataset, batch_size: int, seed: int, rank: int, step: int
) -> torch.Tensor:
    """Patches for ``step`` on ``rank``; also seeds torch so the step's quantization noise is fixed."""
    torch.manual_seed(step_seed(seed, rank, step))
    items = torch.randint(0, len(dataset), (batch_size,)).tolist()
    return torch.stack([dataset[item] for item in items])


def _validation_batch(paths: list[Path], config: TrainConfig) -> torch.Tensor:
    """A fixed set of patches of the held-out photos (the same for every validation round)."""
    dataset = PatchDataset(paths, config.patch_size)
    torch.manual_seed(step_seed(config.seed, _VALIDATION_STREAM, 0))
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


def _resume(config: TrainConfig, model: Autoencoder, optimizer: torch.optim.Optimizer) -> int:
    """Resume from ``out_dir``'s checkpoint, else start from ``init_from``'s weights (and
    ``transforms_from``'s transforms); returns the first step."""
    out_dir = Path(config.out_dir) if config.out_dir else None
    if out_dir is not None and (out_dir / CHECKPOINT_NAME).is_file():
        state = load_weights(out_dir / CHECKPOINT_NAME, model, "use another --out folder")
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
        return int(state["step"])
    if config.init_from:
        load_weights(Path(config.init_from), model, "pass --N and --M of that model")
    if config.transforms_from:
        load_transforms(Path(config.transforms_from), model)
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
        check_config(config)
        model = build_model(
            {"architecture": config.architecture, "N": config.N, "M": config.M,
             "quantization": config.quantization}  # fmt: skip
        ).to(device)
    except ValueError as error:
        raise NicbookError(str(error)) from error
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    start = _resume(config, model, optimizer)  # loading moves the optimiser state to the device
    if out_dir is not None and group.is_main:
        drop_log_after(out_dir / LOG_NAME, start)
    if config.hyper_path_only:
        if group.world_size > 1:
            group.close()
            raise NicbookError("the hyper path alone trains in one process; run it without torchrun")
        fit_hyper_path(config, model, optimizer, train_paths, validation_paths, start, out_dir, progress)
        FactorizedEntropyModel.update_all(model)
        return model.eval()
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
    FactorizedEntropyModel.update_all(model)
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
    transforms = [*model.analysis.parameters(), *model.synthesis.parameters()]
    distributed = isinstance(trained, DistributedDataParallel)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        frozen = step < config.freeze_transforms_until
        if not distributed:  # no gradients computed for frozen weights (DDP keeps its parameter set)
            for parameter in transforms:
                parameter.requires_grad_(not frozen)
        batch = _training_batch(dataset, config.batch_size, config.seed, rank, step).to(device)
        with autocast:
            losses = rd_loss(trained(batch), batch, config.lmbda)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if frozen:  # Adam leaves parameters without a gradient untouched
            for parameter in transforms:
                parameter.grad = None
        if config.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
        optimizer.step()
        done = step + 1
        last = done == config.steps
        if done % config.log_every == 0 or last:
            values = {key: round(float(value.detach()), 5) for key, value in losses.items()}
            bar.set_postfix(loss=values["loss"], bpp=values["bpp"], psnr=values["psnr"])
            seconds = round(time.perf_counter() - started, 2)
            append_log(log_path, {"step": done, "split": "train", **values, "seconds": seconds})
        if validation is not None and (done % config.validation_every == 0 or last):
            append_log(
                log_path,
                {
                    "step": done,
                    "split": "validation",
                    **evaluate_patches(model, validation, config.lmbda),
                },
            )
        if out_dir is not None and (done % config.checkpoint_every == 0 or last):
            save_checkpoint(out_dir / CHECKPOINT_NAME, model, optimizer, done, config)
    for parameter in transforms:
        parameter.requires_grad_(True)


@torch.no_grad()
def evaluate_patches(model: Autoencoder, patches: torch.Tensor, lmbda: float) -> dict[str, float]:
    """Loss, estimated bpp and PSNR of rounded latents on ``patches`` (eval mode, restored after)."""
    was_training = model.training
    model.eval()
    losses = rd_loss(model(patches), patches, lmbda)
    model.train(was_training)
    return {key: round(float(value), 5) for key, value in losses.items()}


