"""Training a hyperprior's hyper path alone, on the latents of its frozen transforms.

When the analysis and synthesis transforms stay as they are (a hyperprior that starts from a trained
factorized model), the distortion does not depend on the hyper path, and every training photo has
the same latents at every step. So :func:`fit_hyper_path` analyses each photo once
(:class:`LatentCrops`) and trains the hyper-analysis, the hyper-synthesis and the hyper-latents'
density on random crops of those latents, for the rate alone. A step then skips both transforms,
most of the work of a full step, and the latents are priced exactly as the codec codes them:
rounded, under the Gaussians the hyper path predicts, with no noise in their place. (The
hyper-latents keep the mixed proxy: noise for their rate, straight-through rounding into the
hyper-synthesis.) Validation prices the held-out photos' latents whole, in eval mode, as files.

The run is an ordinary training run (``nicbook train --hyper-path-only``): the same checkpoints,
log and seeds per step as :mod:`nicbook.nn.training`, so it resumes and exports like any other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from nicbook.data import load_image
from nicbook.errors import DataNotFoundError
from nicbook.nn.checkpoints import CHECKPOINT_NAME, LOG_NAME, append_log, save_checkpoint
from nicbook.nn.config import TrainConfig, learning_rate, step_seed
from nicbook.nn.models import STRIDE, ScaleHyperprior
from nicbook.nn.tensors import to_tensor
from nicbook.nn.tiling import analysis_in_tiles

__all__ = ["LatentCrops", "fit_hyper_path", "hyper_path_rate"]


class LatentCrops:
    """The latents of photos under a model's analysis transform, and random crops of them.

    Each photo is cut to sides that are multiples of 16 (its ragged edge dropped, not padded: a
    padded edge's latents are unlike a photo's) and analysed once, tile by tile
    (:func:`~nicbook.nn.tiling.analysis_in_tiles`), so memory per photo is bounded by a tile; the
    latents are kept in float16 on the model's device (about 0.6 MB per 768×512 photo).
    """

    def __init__(self, model: ScaleHyperprior, paths: Sequence[Path], progress: bool = True) -> None:
        if not paths:
            raise DataNotFoundError("no photos to take latents from")
        device = next(model.parameters()).device
        self.latents: list[torch.Tensor] = []
        for path in tqdm(paths, desc="analysing photos", disable=not progress):
            image = load_image(path)
            height, width = (side // STRIDE * STRIDE for side in image.shape[:2])
            if height == 0 or width == 0:
                continue
            x = to_tensor(image[:height, :width], device)
            self.latents.append(analysis_in_tiles(model.analysis, x)[0].half())

    def crops(self, count: int, side: int) -> torch.Tensor:
        """``count`` random crops ``(count, M, side, side)`` in float32, from photos at least that large;
        torch's generator picks the photos and the corners."""
        large = [y for y in self.latents if min(y.shape[-2:]) >= side]
        if not large:
            raise DataNotFoundError(f"no photo has {side} × {side} latent positions ({side * STRIDE} pixels a side)")
        batch = []
        for item in torch.randint(0, len(large), (count,)).tolist():
            y = large[item]
            top = int(torch.randint(0, y.shape[-2] - side + 1, ()))
            left = int(torch.randint(0, y.shape[-1] - side + 1, ()))
            batch.append(y[:, top : top + side, left : left + side])
        return torch.stack(batch).float()


def hyper_path_rate(model: ScaleHyperprior, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bits of the latents ``y`` ``(B, M, h, w)`` and of their hyper-latents.

    In training mode the latents are rounded exactly and the hyper-latents get the mixed proxy; in
    eval mode both are rounded, as in a file.
    """
    entropy_model = model.hyper_entropy_model
    if model.training:
        terms = model.rate_terms(y, "mixed", "ste", entropy_model.current_medians())
    else:
        entropy_model.ensure_tables()
        terms = model.rate_terms(y, "round", "round", entropy_model.medians)
    return terms.latent_bits, terms.side_bits


@torch.no_grad()
def _validate(model: ScaleHyperprior, latents: LatentCrops) -> dict[str, float]:
    """Estimated bits per pixel of the held-out photos (latents and side information, whole photos)."""
    model.eval()
    latent_bits = side_bits = pixels = 0.0
    for y in latents.latents:
        bits = hyper_path_rate(model, y[None].float())
        latent_bits, side_bits = latent_bits + float(bits[0]), side_bits + float(bits[1])
        pixels += y.shape[-2] * y.shape[-1] * STRIDE**2
    model.train()
    return {"bpp": round((latent_bits + side_bits) / pixels, 5), "side_bpp": round(side_bits / pixels, 5)}


def fit_hyper_path(
    config: TrainConfig,
    model: ScaleHyperprior,
    optimizer: torch.optim.Optimizer,
    train_paths: Sequence[Path],
    validation_paths: Sequence[Path],
    start: int,
    out_dir: Path | None,
    progress: bool = True,
) -> None:
    """Steps ``start .. config.steps - 1`` of training ``model``'s hyper path on its frozen transforms'
    latents, ``config.batch_size`` crops of ``config.patch_size`` pixels a side per step.

    Logging, validation and checkpoints as in :func:`nicbook.nn.training.fit` (when ``out_dir`` is set).
    """
    side = config.patch_size // STRIDE
    started = time.perf_counter()  # the analysis of the photos counts as training time
    training = LatentCrops(model, train_paths, progress)
    validation = LatentCrops(model, validation_paths, progress)
    log_path = out_dir / LOG_NAME if out_dir is not None else None
    hyper_path = [parameter for name, parameter in model.named_parameters() if name.startswith("hyper_")]
    model.train()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, disable=not progress,
               desc="training the hyper path")  # fmt: skip
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        torch.manual_seed(step_seed(config.seed, 0, step))
        latent_bits, side_bits = hyper_path_rate(model, training.crops(config.batch_size, side))
        pixels = config.batch_size * config.patch_size**2
        bpp = (latent_bits + side_bits) / pixels
        optimizer.zero_grad(set_to_none=True)
        bpp.backward()
        if config.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(hyper_path, config.clip_grad_norm)
        optimizer.step()
        done = step + 1
        last = done == config.steps
        if done % config.log_every == 0 or last:
            values = {"loss": round(bpp.item(), 5), "bpp": round(bpp.item(), 5),
                      "side_bpp": round(side_bits.item() / pixels, 5)}  # fmt: skip
            bar.set_postfix(bpp=values["bpp"])
            seconds = round(time.perf_counter() - started, 2)
            append_log(log_path, {"step": done, "split": "train", **values, "seconds": seconds})
        if log_path is not None and (done % config.validation_every == 0 or last):
            append_log(log_path, {"step": done, "split": "validation", **_validate(model, validation)})
        if out_dir is not None and (done % config.checkpoint_every == 0 or last):
            save_checkpoint(out_dir / CHECKPOINT_NAME, model, optimizer, done, config)
