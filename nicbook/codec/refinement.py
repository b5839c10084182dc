"""Encoder-side refinement of one image's latents: search for the rounding the decoder likes best.

The analysis transform is trained to give good latents *on average* over the training photos. For
the one image being coded, latents with a lower ``R + λ·D`` usually lie nearby, and the encoder
may look for them: gradient descent on the latents with the decoder held fixed, rounding in the
forward pass and passing the gradient straight through the rounding (Campos et al., 2019; Yang et
al., 2020). Nothing about decoding changes: a refined file is an ordinary ``.nic`` file, only
slower to write, like a video encoder's slower presets. The search runs in float32 and so may visit
other iterates on other machines; every outcome is a valid file that decodes the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from nicbook.nn.models import FactorizedPrior, ModelOutput, rd_loss
from nicbook.nn.rounding import round_around, round_straight_through

__all__ = ["LatentRefinement"]


@dataclass(frozen=True)
class LatentRefinement:
    """Gradient descent (Adam) on a factorized model's latents for ``bpp + λ·255²·MSE`` of one image.

    Parameters
    ----------
    lmbda:
        The λ the model was trained for (:data:`nicbook.zoo.CONFIGURATIONS` for zoo models, the
        checkpoint's ``train_config`` otherwise): the trade-off the search should respect.
    steps:
        Adam steps. Each costs one pass of the synthesis transform forward and backward, about
        1.5 s for a 768×512 image on two CPU cores; 0 keeps the analysis transform's latents.
    learning_rate:
        Adam's step in latent units (one unit is one quantization step), decayed linearly to zero.
    """

    lmbda: float
    steps: int = 16
    learning_rate: float = 0.005

    def __post_init__(self) -> None:
        if not self.lmbda > 0:
            raise ValueError(f"lmbda must be positive, not {self.lmbda}")
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps must be a non-negative integer, not {self.steps!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, not {self.learning_rate}")

    def refine(
        self,
        model: FactorizedPrior,
        x: torch.Tensor,
        latents: torch.Tensor,
        size: tuple[int, int] | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Latents ``(1, M, H/16, W/16)`` for ``x`` (``(1, 3, H, W)`` in [0, 1]) that code better than ``latents``.

        ``latents`` are the analysis transform's own (the search starts there; with ``steps = 0``
        they are only rounded). ``size`` is the ``(height, width)`` of the real image in
        the top-left corner of ``x`` (the rest is padding, which costs rate but whose distortion
        does not count). Of the iterates visited, the one with the lowest loss is returned, on
        the integer grid of the entropy model (rate by the model's density), so refining never
        does worse than plain rounding by the model's own measure.
        """
        model.entropy_model.ensure_tables()
        medians = model.entropy_model.medians
        if self.steps == 0:
            return round_around(latents, medians)
        height, width = size or x.shape[-2:]
        target = x[..., :height, :width]
        latents = latents.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([latents], lr=self.learning_rate)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / self.steps)
        best_loss, best = float("inf"), None
        for step in tqdm(range(self.steps + 1), desc="refining latents", disable=not progress):
            with torch.enable_grad():
                rounded = round_straight_through(latents, medians)
                likelihoods = model.entropy_model.likelihood(rounded)
                x_hat = model.synthesis(rounded)[..., :height, :width]
                output = ModelOutput(x_hat, likelihoods, -torch.log2(likelihoods).sum())
                loss = rd_loss(output, target, self.lmbda)["loss"]
            if loss.item() < best_loss:
                best_loss, best = loss.item(), rounded.detach()
            if step == self.steps:
                break
            (gradient,) = torch.autograd.grad(loss, latents)
            latents.grad = gradient
            optimizer.step()
            schedule.step()
        return best
