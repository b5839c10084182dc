"""Encoder-side refinement of one image's latents: search for the rounding the decoder likes best.

The analysis transform is trained to give good latents *on average* over the training photos. For
the one image being coded, latents with a lower ``R + λ·D`` usually lie nearby, and the encoder
may look for them: gradient descent on the latents with the decoder held fixed, rounding in the
forward pass and passing the gradient straight through the rounding (Campos et al., 2019; Yang et
al., 2020). A hyperprior model's hyper-latents are searched together with its latents, so the
side information may change too: it pays where a few more bits of it buy sharper scales. Nothing
about decoding changes: a refined file is an ordinary ``.nic`` file, only slower to write, like a
video encoder's slower presets. A photo larger than a tile (:mod:`nicbook.nn.tiling`) is searched
tile by tile, so the search's memory is bounded by a tile. The search runs in float32 and so may
visit other iterates on other machines; every outcome is a valid file that decodes the same
everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from tqdm.auto import tqdm

from nicbook.codec.hyperprior import HYPER_STRIDE
from nicbook.nn.models import FactorizedPrior, ModelOutput, ScaleHyperprior, rd_loss
from nicbook.nn.rounding import round_around, round_straight_through
from nicbook.nn.tiling import latent_tiles, pixel_span

__all__ = ["LatentRefinement"]

#: ``R + λD`` of rounded variables against the pixels ``target`` (its first argument), and those
#: rounded variables.
RoundedLoss = Callable[..., tuple[torch.Tensor, tuple[torch.Tensor, ...]]]


@dataclass(frozen=True)
class LatentRefinement:
    """Gradient descent (Adam) on a model's latents for ``bpp + λ·255²·MSE`` of one image.

    :meth:`refine` serves a factorized model, :meth:`refine_hyperprior` a (mean-)scale hyperprior.

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
        does not count). Of the iterates visited, the one with the lowest loss is kept, on the
        integer grid of the entropy model (rate by the model's density), so refining never does
        worse than plain rounding by the model's own measure. Large images are refined tile by
        tile (:meth:`_search_in_tiles`).
        """
        entropy_model = model.entropy_model
        entropy_model.ensure_tables()
        if self.steps == 0:
            return round_around(latents, entropy_model.medians)

        def rounded_loss(target: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
            y_hat = round_straight_through(y, entropy_model.medians)
            likelihoods = entropy_model.likelihood(y_hat)
            output = ModelOutput(_decoded(model, y_hat, target), likelihoods, -torch.log2(likelihoods).sum())
            return rd_loss(output, target, self.lmbda)["loss"], (y_hat,)

        (refined,) = self._search_in_tiles(rounded_loss, x, size, (latents,), (1,), progress)
        return refined

    def refine_hyperprior(
        self,
        model: ScaleHyperprior,
        x: torch.Tensor,
        latents: torch.Tensor,
        size: tuple[int, int] | None = None,
        progress: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents and hyper-latents ``(1, N, H/64, W/64)`` for ``x`` that code better than ``latents``
        and their hyper-analysis.

        As :meth:`refine`, for a hyperprior model: the search starts from ``latents`` and
        ``z = h_a(latents)`` and moves both. The rate is that of the latents under the Gaussians the
        rounded hyper-latents give plus that of the hyper-latents; the returned latents lie on the
        grid ``k + μ`` of the Gaussians' means (integers for the scale hyperprior), the
        hyper-latents on their entropy model's grid. With ``steps = 0`` both come back unrounded,
        for the codec to round exactly as the plain encoder does.
        """
        entropy_model = model.hyper_entropy_model
        entropy_model.ensure_tables()
        with torch.no_grad():
            hyper_latents = model.hyper_latents(latents)
        if self.steps == 0:
            return latents, hyper_latents

        def rounded_loss(
            target: torch.Tensor, y: torch.Tensor, z: torch.Tensor
        ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
            terms = model.rate_terms(y, "ste", "ste", entropy_model.medians, hyper_latents=z)
            y_hat = terms.decoded_latents
            bits = terms.latent_bits + terms.side_bits
            output = ModelOutput(_decoded(model, y_hat, target), terms.latent_likelihoods, bits, terms.side_bits)
            return rd_loss(output, target, self.lmbda)["loss"], (y_hat, terms.decoded_side)

        y_hat, z_hat = self._search_in_tiles(rounded_loss, x, size, (latents, hyper_latents), (1, HYPER_STRIDE), progress)
        return y_hat, z_hat

    def _search_in_tiles(
        self,
        rounded_loss: RoundedLoss,
        x: torch.Tensor,
        size: tuple[int, int] | None,
        start: tuple[torch.Tensor, ...],
        strides: tuple[int, ...],
        progress: bool,
    ) -> tuple[torch.Tensor, ...]:
        """:meth:`_search` tile by tile (:func:`~nicbook.nn.tiling.latent_tiles`), so that memory is
        bounded by a tile; the rounded variables.

        ``start`` holds the variables, on grids ``strides`` times coarser than the latents, and
        ``rounded_loss(target, *variables)`` prices them against the pixels ``target``. Each tile's
        search moves the variables of its core only, holds those of its margin where earlier tiles
        left them, and prices the whole widened tile: the pixels and rates a core latent changes lie
        inside it (a latent reaches about two positions into the image; a hyper-latent's reach is
        wider, and the margin takes in most of it), so what improves the tile improves the image.
        An image of one tile (a Kodak photo) is searched as a whole.
        """
        height, width = size or x.shape[-2:]
        current = [value.detach().float().clone() for value in start]
        tiles = list(latent_tiles(*start[0].shape[-2:]))
        bar = tqdm(total=len(tiles) * (self.steps + 1), desc="refining latents", disable=not progress)
        for core, wide, inner in tiles:
            rows, cols = pixel_span(wide[0]), pixel_span(wide[1])
            target = x[..., rows, cols][..., : height - rows.start, : width - cols.start]
            parts = tuple(value[..., _coarse(wide[0], stride), _coarse(wide[1], stride)] for value, stride in zip(current, strides))
            masks = tuple(_core_mask(part, inner, stride) for part, stride in zip(parts, strides))
            best = self._search(partial(rounded_loss, target), parts, masks, bar)
            for value, part, stride in zip(current, best, strides):
                value[..., _coarse(core[0], stride), _coarse(core[1], stride)] = (
                    part[..., _coarse(inner[0], stride), _coarse(inner[1], stride)]
                )
        bar.close()
        return tuple(current)

    def _search(
        self, rounded_loss: RoundedLoss, start: tuple[torch.Tensor, ...], masks: tuple[torch.Tensor, ...], bar: tqdm
    ) -> tuple[torch.Tensor, ...]:
        """Adam on the variables ``start`` for ``rounded_loss``, each moving only where its ``mask`` is 1;
        the rounded variables of the best iterate.

        Step 0 prices plain rounding of ``start``, so the result is never worse than it.
        """
        variables = [value.clone().requires_grad_(True) for value in start]
        optimizer = torch.optim.Adam(variables, lr=self.learning_rate)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / self.steps)
        best_loss, best = float("inf"), ()
        for step in range(self.steps + 1):
            with torch.enable_grad():
                loss, rounded = rounded_loss(*variables)
            bar.update()
            if loss.item() < best_loss:
                best_loss, best = loss.item(), tuple(value.detach() for value in rounded)
            if step == self.steps:
                break
            for variable, gradient, mask in zip(variables, torch.autograd.grad(loss, variables), masks):
                variable.grad = gradient * mask
            optimizer.step()
            schedule.step()
        return best


def _coarse(span: slice, stride: int) -> slice:
    """A span of latent positions on a grid ``stride`` times coarser (its start a multiple of ``stride``)."""
    return slice(span.start // stride, -(-span.stop // stride))


def _core_mask(part: torch.Tensor, inner: tuple[slice, slice], stride: int) -> torch.Tensor:
    """``(1, 1, h, w)``: 1 at the positions of ``part`` in the tile's core, 0 in its margin."""
    mask = part.new_zeros((1, 1, *part.shape[-2:]))
    mask[..., _coarse(inner[0], stride), _coarse(inner[1], stride)] = 1.0
    return mask


def _decoded(model: FactorizedPrior | ScaleHyperprior, y_hat: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The synthesis of ``y_hat``, cropped to the pixels of ``target``."""
    return model.synthesis(y_hat)[..., : target.shape[-2], : target.shape[-1]]
