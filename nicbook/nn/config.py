"""What defines a training run: :class:`TrainConfig`, stored in its checkpoints.

Plain Python and numpy (no torch), so the command line can build its options from it without
loading the training loop (:mod:`nicbook.nn.training`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["TrainConfig", "check_config", "learning_rate", "step_seed"]


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in its checkpoints).

    ``architecture`` is ``"factorized"`` (:class:`~nicbook.nn.models.FactorizedPrior`),
    ``"hyperprior"`` (:class:`~nicbook.nn.models.ScaleHyperprior`), ``"mean-scale"``
    (:class:`~nicbook.nn.models.MeanScaleHyperprior`) or ``"autoencoder"`` (the distortion-only :class:`~nicbook.nn.models.Autoencoder`, whose loss is
    ``lmbda · MSE``). ``lmbda`` follows the convention of :func:`nicbook.nn.models.rd_loss` (MSE on
    the 0–255 scale).
    ``steps`` counts optimiser steps in total, including those before a resume.
    ``init_from`` starts a new run from another run's weights (fine-tuning a trained model to
    another λ); it is ignored when ``out_dir`` already holds a checkpoint to resume.
    ``transforms_from`` starts a new run with the analysis and synthesis transforms of another
    checkpoint of the same ``N`` and ``M``, of any architecture: a hyperprior warm-started from a
    trained factorized model then learns mostly its hyper path (also ignored when resuming).
    ``lr_drop_at`` is the step from which the learning rate is ``lr / 10`` (0: never); a short
    stretch at the lower rate at the end of a run settles the weights.
    ``freeze_transforms_until`` keeps the analysis and synthesis transforms as they are for the
    steps before it (0: never): a hyperprior warm-started from trained transforms first learns
    its hyper path alone, which also makes those steps cheaper, and then everything together.
    ``hyper_path_only`` trains a hyperprior's hyper path alone for the whole run, on the latents of
    its frozen transforms (those of ``init_from`` or ``transforms_from``), analysed once
    (:mod:`nicbook.nn.latent_training`): much cheaper per step, and the latents priced exactly as
    the codec rounds them; ``patch_size`` is then the side of the crops in pixels (a multiple of 64).
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
    freeze_transforms_until: int = 0
    hyper_path_only: bool = False
    quantization: str = "noise"
    seed: int = 0
    device: str = "auto"
    out_dir: str | None = None
    init_from: str | None = None
    transforms_from: str | None = None
    amp: bool = False
    validation_fraction: float = 0.05
    validation_patches: int = 16
    validation_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 50
    clip_grad_norm: float = 1.0


def check_config(config: TrainConfig) -> TrainConfig:
    """``config`` itself, once its numbers make sense; raises ValueError naming the first that does not."""
    if config.steps < 1 or config.batch_size < 1 or config.patch_size < 16 or config.patch_size % 16:
        raise ValueError("steps and batch size must be positive, patch size a multiple of 16")
    if not math.isfinite(config.lmbda) or config.lmbda < 0:
        raise ValueError("lmbda must be a non-negative number")
    if config.hyper_path_only:
        if config.architecture not in ("hyperprior", "mean-scale"):
            raise ValueError("hyper_path_only trains a hyperprior's hyper path: use a hyperprior architecture")
        if not (config.init_from or config.transforms_from):
            raise ValueError("hyper_path_only keeps trained transforms: give init_from or transforms_from")
        if config.patch_size % 64:
            raise ValueError("with hyper_path_only the patch size must be a multiple of 64 (whole hyper-latents)")
    return config


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of the random draws of ``step`` on ``rank`` of a run seeded with ``seed``: a resumed
    run draws what an uninterrupted one would."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


def learning_rate(config: TrainConfig, step: int) -> float:
    """The learning rate at ``step``: ``lr``, and a tenth of it from ``lr_drop_at`` on (when set)."""
    return config.lr / 10 if 0 < config.lr_drop_at <= step else config.lr
