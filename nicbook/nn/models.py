"""Autoencoders for images: a plain one, and the compressive models (factorized prior, hyperpriors).

:class:`Autoencoder` is the analysis transform followed by the synthesis transform, trained for
distortion alone. :class:`FactorizedPrior` (Ballé et al. 2017/2018) quantizes the latents and
learns their distribution with :class:`~nicbook.nn.entropy_models.FactorizedEntropyModel`, so it can
be trained for rate + λ·distortion and its latents coded to bytes. :class:`ScaleHyperprior`
(Ballé et al. 2018) and :class:`MeanScaleHyperprior` (Minnen et al. 2018) send side information
from which each latent's distribution is predicted.

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

from nicbook.nn.entropy_models import FactorizedEntropyModel, GaussianConditional
from nicbook.nn.layers import (
    analysis_transform,
    hyper_analysis_transform,
    hyper_synthesis_transform,
    synthesis_transform,
)
from nicbook.nn.rounding import MODES, quantize

__all__ = [
    "STRIDE",
    "Autoencoder",
    "CompressiveAutoencoder",
    "FactorizedPrior",
    "MeanScaleHyperprior",
    "ModelOutput",
    "RateTerms",
    "ScaleHyperprior",
    "build_model",
    "rd_loss",
]

#: The downsampling factor of the analysis transform: image sides must be multiples of it.
STRIDE = 16


@dataclass
class ModelOutput:
    """What a model's forward pass returns.

    ``likelihoods`` has the latents' shape (None for the plain autoencoder) and ``bits`` is the
    estimated rate of the whole batch, ``-Σ log2 likelihoods`` (0 for the plain autoencoder);
    for the hyperprior models it includes ``side_bits``, the rate of the hyper-latents.
    """

    x_hat: torch.Tensor
    likelihoods: torch.Tensor | None
    bits: torch.Tensor
    side_bits: torch.Tensor | None = None


@dataclass
class RateTerms:
    """A hyperprior's rate of some latents: what :meth:`ScaleHyperprior.rate_terms` returns.

    ``decoded_latents`` and ``decoded_side`` are the quantized latents the synthesis sees and the
    quantized hyper-latents the hyper-synthesis sees (the proxy's); the two likelihoods have the
    shapes of the latents and of the hyper-latents.
    """

    decoded_latents: torch.Tensor
    decoded_side: torch.Tensor
    latent_likelihoods: torch.Tensor
    side_likelihoods: torch.Tensor

    @property
    def latent_bits(self) -> torch.Tensor:
        return -torch.log2(self.latent_likelihoods).sum()

    @property
    def side_bits(self) -> torch.Tensor:
        return -torch.log2(self.side_likelihoods).sum()


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


class CompressiveAutoencoder(Autoencoder):
    """What every compressive model shares: a rounding proxy for training and a name for its files.

    Parameters
    ----------
    N, M:
        Channels of the hidden layers and of the latents.
    quantization:
        Training proxy, one of ``"noise"``, ``"ste"``, ``"mixed"`` (see :mod:`nicbook.nn.rounding`);
        in eval mode the latents are always rounded.
    name:
        Identifier written into ``.nic`` files (zoo models are called ``<architecture>-q<quality>``);
        by default ``<architecture>-N<N>-M<M>``.
    """

    def __init__(
        self, N: int = 128, M: int = 192, quantization: str = "noise", name: str | None = None
    ) -> None:
        super().__init__(N, M)
        if quantization not in MODES:
            raise ValueError(
                f"unknown quantization mode {quantization!r}; choose one of {', '.join(MODES)}"
            )
        self.quantization = quantization
        self.name = name or f"{self.architecture}-N{N}-M{M}"

    @property
    def config(self) -> dict:
        return {**super().config, "quantization": self.quantization, "name": self.name}

    def _rounding(self, entropy_model: FactorizedEntropyModel) -> tuple[str, torch.Tensor | None]:
        """This pass's quantization mode and the grid offsets (medians) of ``entropy_model`` it rounds to."""
        mode = self.quantization if self.training else "round"
        if mode == "noise":
            return mode, None
        if self.training or entropy_model.tables_stale:
            return mode, entropy_model.current_medians()
        return mode, entropy_model.medians


class FactorizedPrior(CompressiveAutoencoder):
    """Compressive autoencoder with a factorized entropy model over the ``M`` latent channels.

    Parameters as for :class:`CompressiveAutoencoder`.
    """

    architecture = "factorized"

    def __init__(
        self, N: int = 128, M: int = 192, quantization: str = "noise", name: str | None = None
    ) -> None:
        super().__init__(N, M, quantization, name)
        self.entropy_model = FactorizedEntropyModel(M)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        y = self.analysis(x)
        mode, medians = self._rounding(self.entropy_model)
        with torch.autocast(y.device.type, enabled=False):
            quantized = quantize(y.float(), mode, medians)
            likelihoods = self.entropy_model.likelihood(quantized.for_rate)
        x_hat = self.synthesis(quantized.for_distortion)
        return ModelOutput(x_hat, likelihoods, -torch.log2(likelihoods).sum())


class ScaleHyperprior(CompressiveAutoencoder):
    """Compressive autoencoder whose latents are coded with a Gaussian of a scale sent as side information.

    Ballé et al. (2018): a hyper-analysis ``h_a`` summarises the magnitudes ``|y|`` of the latents in
    hyper-latents ``z`` (16× fewer positions per channel), coded with a factorized density; the
    hyper-synthesis ``h_s`` turns the rounded ``ẑ`` into a scale ``σ`` for every latent, and
    ``round(y)`` is coded under ``N(0, σ²)``. The rate is the bits of ``y`` plus those of ``z``.

    Parameters as for :class:`CompressiveAutoencoder`; ``N`` is also the number of hyper-latent
    channels.
    """

    architecture = "hyperprior"

    def __init__(
        self, N: int = 128, M: int = 192, quantization: str = "mixed", name: str | None = None
    ) -> None:
        super().__init__(N, M, quantization, name)
        self.hyper_analysis = hyper_analysis_transform(N, M)
        self.hyper_synthesis = hyper_synthesis_transform(N, *self._hyper_widths())
        self.hyper_entropy_model = FactorizedEntropyModel(N)
        self.conditional = GaussianConditional()

    def _hyper_widths(self) -> tuple[int, int]:
        """Hidden and output channels of ``h_s``: a scale per latent channel."""
        return self.N, self.M

    def hyper_latents(self, y: torch.Tensor) -> torch.Tensor:
        """``z = h_a(|y|)``: the scale hyperprior summarises the magnitudes of the latents."""
        return self.hyper_analysis(torch.abs(y))

    def gaussian_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Scales (and means, ``None`` here) of the latents' Gaussians from rounded hyper-latents."""
        return self.hyper_synthesis(z_hat), None

    def rate_terms(
        self,
        y: torch.Tensor,
        side_mode: str,
        latent_mode: str,
        medians: torch.Tensor | None,
        hyper_latents: torch.Tensor | None = None,
    ) -> RateTerms:
        """The likelihoods of latents ``y`` ``(B, M, h, w)`` and of their hyper-latents, with the
        quantization proxies ``side_mode`` for the hyper-latents (rounded around ``medians``) and
        ``latent_mode`` for the latents (rounded around the means).

        The hyper-latents are ``h_a(y)`` unless given (the refining encoder searches them). The
        forward pass uses one proxy for both; training the hyper path on fixed latents
        (:mod:`nicbook.nn.latent_training`) rounds the latents exactly, as the codec does.
        """
        z = quantize(self.hyper_latents(y) if hyper_latents is None else hyper_latents, side_mode, medians)
        z_likelihoods = self.hyper_entropy_model.likelihood(z.for_rate)
        height, width = y.shape[-2:]  # h_s gives 4 positions per hyper-latent, a multiple of 4
        scales, means = (None if value is None else value[..., :height, :width]
                         for value in self.gaussian_parameters(z.for_distortion))  # fmt: skip
        offset = means if means is not None else 0.0
        y_hat = quantize(y - offset, latent_mode)
        y_likelihoods = self.conditional.likelihood(y_hat.for_rate + offset, scales, means)
        return RateTerms(y_hat.for_distortion + offset, z.for_distortion, y_likelihoods, z_likelihoods)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        y = self.analysis(x)
        mode, medians = self._rounding(self.hyper_entropy_model)
        with torch.autocast(y.device.type, enabled=False):
            terms = self.rate_terms(y.float(), mode, mode, medians)
        x_hat = self.synthesis(terms.decoded_latents)
        return ModelOutput(x_hat, terms.latent_likelihoods, terms.latent_bits + terms.side_bits, terms.side_bits)


class MeanScaleHyperprior(ScaleHyperprior):
    """The scale hyperprior with a mean too (Minnen et al. 2018): ``h_s`` predicts ``μ`` and ``σ``.

    ``z = h_a(y)`` sees the signed latents, and ``round(y - μ)`` is coded under ``N(0, σ²)``: a
    latent whose value the side information predicts costs little even where it is large.
    """

    architecture = "mean-scale"

    def _hyper_widths(self) -> tuple[int, int]:
        return self.M * 3 // 2, 2 * self.M

    def hyper_latents(self, y: torch.Tensor) -> torch.Tensor:
        return self.hyper_analysis(y)

    def gaussian_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        scales, means = self.hyper_synthesis(z_hat).chunk(2, dim=1)
        return scales, means


def build_model(config: dict) -> Autoencoder:
    """A fresh model from its :attr:`~Autoencoder.config` dictionary."""
    architectures = {
        cls.architecture: cls
        for cls in (Autoencoder, FactorizedPrior, ScaleHyperprior, MeanScaleHyperprior)
    }
    kind = config.get("architecture")
    if kind not in architectures:
        raise ValueError(f"unknown architecture {kind!r}; known: {', '.join(architectures)}")
    options = {key: config[key] for key in ("N", "M") if key in config}
    if kind != "autoencoder":
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
