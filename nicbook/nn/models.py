"""Autoencoders for images: a plain one, and the compressive factorized-prior model.

:class:`Autoencoder` is the analysis transform followed by the synthesis transform, trained for
distortion alone. :class:`FactorizedPrior` (Ballé et al. 2017/2018) quantizes the latents and
learns their distribution with :class:`~nicbook.nn.entropy_models.FactorizedEntropyModel`, so it can
be trained for rate + λ·distortion and its latents coded to bytes.

Images enter as float tensors ``(B, 3, H, W)`` in [0, 1], ``H`` and ``W`` multiples of 16.

The λ convention
----------------
:func:`rd_loss` is ``R + λ·D`` with ``R`` in bits per pixel and ``D`` the MSE on the 0–255 scale,
that is ``D = 255² · MSE`` of the [0, 1] images. This is the convention behind the λ values
0.0018 … 0.0483 used for the factorized-prior models in the literature and in CompressAI.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nicbook.nn.entropy_models import FactorizedEntropyModel
from nicbook.nn.layers import analysis_transform, synthesis_transform
from nicbook.nn.rounding import MODES, quantize

__all__ = ["STRIDE", "Autoencoder", "FactorizedPrior", "ModelOutput", "build_model", "rd_loss"]

#: The downsampling factor of the analysis transform: image sides must be multiples of it.
STRIDE = 16


@dataclass
class ModelOutput:
    """What a model's forward pass returns.

    ``likelihoods`` has the latents' shape (None for the plain autoencoder) and ``bits`` is the
    estimated rate of the whole batch, ``-Σ log2 likelihoods`` (0 for the plain autoencoder).
    """

    x_hat: torch.Tensor
    likelihoods: torch.Tensor | None
    bits: torch.Tensor


class Autoencoder(nn.Module):
    """Analysis then synthesis transform, no quantization: the distortion-only baseline."""

    architecture = "autoencoder"

    def __init__(self, N: int = 128, M: int = 192) -> None:
        super().__init__()
        self.N, self.M = N, M
        self.analysis = analysis_transform(N, M)
        self.synthesis = synthesis_transform(N, M)

    @property
    def config(self) -> dict:
        """Everything needed to rebuild the model before loading its weights."""
        return {"architecture": self.architecture, "N": self.N, "M": self.M}

    def forward(self, x: torch.Tensor) -> ModelOutput:
        x_hat = self.synthesis(self.analysis(x))
        return ModelOutput(x_hat, None, x_hat.new_zeros(()))


class FactorizedPrior(Autoencoder):
    """Compressive autoencoder with a factorized entropy model over the ``M`` latent channels.

    Parameters
    ----------
    N, M:
        Channels of the hidden layers and of the latents.
    quantization:
        Training proxy, one of ``"noise"``, ``"ste"``, ``"mixed"`` (see :mod:`nicbook.nn.rounding`);
        in eval mode the latents are always rounded.
    name:
        Identifier written into ``.nic`` files (zoo models are called ``factorized-q<quality>``).
    """

    architecture = "factorized"

    def __init__(
        self, N: int = 128, M: int = 192, quantization: str = "noise", name: str | None = None
    ) -> None:
        super().__init__(N, M)
        if quantization not in MODES:
            raise ValueError(
                f"unknown quantization mode {quantization!r}; choose one of {', '.join(MODES)}"
            )
        self.quantization = quantization
        self.name = name or f"factorized-N{N}-M{M}"
        self.entropy_model = FactorizedEntropyModel(M)

    @property
    def config(self) -> dict:
        return {**super().config, "quantization": self.quantization, "name": self.name}

    def forward(self, x: torch.Tensor) -> ModelOutput:
        y = self.analysis(x)
        mode = self.quantization if self.training else "round"
        if mode == "noise":
            medians = None
        elif self.training or self.entropy_model.tables_stale:
            medians = self.entropy_model.current_medians()
        else:
            medians = self.entropy_model.medians
        with torch.autocast(y.device.type, enabled=False):
            quantized = quantize(y.float(), mode, medians)
            likelihoods = self.entropy_model.likelihood(quantized.for_rate)
        x_hat = self.synthesis(quantized.for_distortion)
        return ModelOutput(x_hat, likelihoods, -torch.log2(likelihoods).sum())


def build_model(config: dict) -> Autoencoder:
    """A fresh model from its :attr:`~Autoencoder.config` dictionary."""
    architectures = {cls.architecture: cls for cls in (Autoencoder, FactorizedPrior)}
    kind = config.get("architecture")
    if kind not in architectures:
        raise ValueError(f"unknown architecture {kind!r}; known: {', '.join(architectures)}")
    options = {key: config[key] for key in ("N", "M") if key in config}
    if kind == "factorized":
        options["quantization"] = config.get("quantization", "noise")
        options["name"] = config.get("name")
    return architectures[kind](**options)


def rd_loss(output: ModelOutput, x: torch.Tensor, lmbda: float) -> dict[str, torch.Tensor]:
    """Rate–distortion loss ``bpp + λ · 255² · MSE`` (see the module docstring for the λ convention).

    Returns a dict with ``loss``, ``bpp``, ``mse`` (0–255 scale) and ``psnr`` (dB); the plain
    autoencoder has ``bpp = 0``.
    """
    batch, _, height, width = x.shape
    bpp = output.bits / (batch * height * width)
    mse = torch.mean((output.x_hat.float() - x.float()) ** 2) * 255.0**2
    psnr = 10.0 * torch.log10(255.0**2 / mse.detach().clamp_min(1e-10))
    return {"loss": bpp + lmbda * mse, "bpp": bpp, "mse": mse, "psnr": psnr}
