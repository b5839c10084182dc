"""Autoencoders for images: a plain one, and the compressive factorized-prior model.

:class:`Autoencoder` is the analysis transform followed by the synthesis transform, trained for
distortion alone. :class:`FactorizedPrior` (Ballé et al. 2017/2018) quantizes the latents and
learns their distribution with :class:`~nicbook.entropy_models.FactorizedEntropyModel`, so it can
be trained for rate + λ·distortion and its latents coded to bytes.

Images enter as float tensors ``(B, 3, H, W)`` in [0, 1], ``H`` and ``W`` multiples of 16.

The λ convention
----------------
:func:`rd_loss` is ``R + λ·D`` with ``R`` in bits per pixel and ``D`` the MSE on the 0–255 scale,
that is ``D = 255² · MSE`` of the [0, 1] images. This is the convention behind the λ values
0.0018 … 0.0483 used for the factorized-prior models in the literature and in CompressAI.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nicbook.entropy import rans_decode, rans_encode
from nicbook.entropy_models import FactorizedEntropyModel
from nicbook.layers import analysis_transform, synthesis_transform
from nicbook.quantization import MODES, quantize

__all__ = [
    "CODING_DTYPE",
    "STRIDE",
    "Autoencoder",
    "FactorizedPrior",
    "ModelOutput",
    "build_model",
    "rd_loss",
    "weights_hash",
]

#: The downsampling factor of the analysis transform: image sides must be multiples of it.
STRIDE = 16
#: Precision of the synthesis transform when decoding files (training and the encoder's analysis
#: use float32). In float32, oneDNN's convolutions sum in an order that depends on the thread
#: count, enough to move a decoded pixel across a rounding boundary; float64 runs on torch's native kernels, whose results did not
#: change with the thread count in our tests, and shrinks any remaining summation-order
#: difference to about 1e-13, far below the 1/2 step of the final uint8 rounding.
CODING_DTYPE = torch.float64


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
        Training proxy, one of ``"noise"``, ``"ste"``, ``"mixed"`` (see :mod:`nicbook.quantization`);
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

    # ------------------------------------------------------------------ coding hooks

    @torch.no_grad()
    def latent_symbols(self, x: torch.Tensor) -> np.ndarray:
        """Integer latents of one image ``(1, 3, H, W)``: ``round(y - median)`` as ``(M, H/16, W/16)`` int64.

        The analysis runs in the model's own precision (float32), which is fast: the encoder need
        not be reproducible, since the decoder only ever sees these integers. A latent within
        rounding error of a half-integer may round differently on other hardware or thread
        counts; that gives another valid file, never one that decodes differently.
        """
        self.entropy_model.ensure_tables()
        medians = self.entropy_model.medians
        y = self.analysis(x.to(medians.device, medians.dtype))[0]
        medians = medians.reshape(-1, 1, 1)
        return torch.round(y - medians).to(torch.int64).cpu().numpy()

    def table_indices(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The table (= channel) of every symbol of a latent block ``(M, h, w)`` in C order."""
        channels, height, width = shape
        return np.repeat(np.arange(channels, dtype=np.int64), height * width)

    def compress_latents(self, symbols: np.ndarray) -> bytes:
        """rANS-code integer latents ``(M, h, w)`` with the model's per-channel tables."""
        return rans_encode(
            symbols.reshape(-1), self.table_indices(symbols.shape), self.entropy_model.tables
        )

    def decompress_latents(self, data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        """Inverse of :meth:`compress_latents`: the integer latents ``(M, h, w)``."""
        self.entropy_model.ensure_tables()
        values = rans_decode(data, self.table_indices(shape), self.entropy_model.tables)
        return np.asarray(values, dtype=np.int64).reshape(shape)

    @torch.no_grad()
    def synthesize(self, symbols: np.ndarray) -> torch.Tensor:
        """Reconstruction ``(1, 3, 16h, 16w)`` in [0, 1] from integer latents ``(M, h, w)``.

        Runs in :data:`CODING_DTYPE` (float64), so the decoded image does not depend on the
        thread count: this is the part of decoding that must be reproducible.
        """
        medians = self.entropy_model.medians.to(
            _coding_device(self.entropy_model.medians.device), CODING_DTYPE
        )
        y_hat = torch.from_numpy(symbols).to(medians.device, CODING_DTYPE) + medians.reshape(-1, 1, 1)
        return _run_in_precision(self.synthesis, y_hat.unsqueeze(0), CODING_DTYPE).clamp_(0.0, 1.0)

    @torch.no_grad()
    def estimated_bits(self, symbols: np.ndarray) -> float:
        """``-Σ log2 P`` of integer latents under the (float) density: the rate the tables approach."""
        device = self.entropy_model.medians.device
        y_hat = torch.from_numpy(symbols).to(device, torch.float32).unsqueeze(0)
        y_hat = y_hat + self.entropy_model.medians.reshape(1, -1, 1, 1)
        return float(-torch.log2(self.entropy_model.likelihood(y_hat)).sum())


def _coding_device(device: torch.device) -> torch.device:
    """Where the coding transforms run: ``device``, or the CPU for MPS (no float64 there)."""
    return torch.device("cpu") if device.type == "mps" else device


def _run_in_precision(module: nn.Module, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``module(x)`` with its floating-point weights and input cast to ``dtype`` (module unchanged).

    Runs on the CPU when ``x`` is on Apple's MPS, which has no float64.
    """
    device = _coding_device(x.device)
    state = {
        name: tensor.to(device, dtype) if tensor.is_floating_point() else tensor.to(device)
        for name, tensor in module.state_dict().items()
    }
    return torch.func.functional_call(module, state, (x.to(device, dtype),))


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


def weights_hash(model: nn.Module) -> bytes:
    """First 8 bytes of SHA-256 over the state dict (names, dtypes, shapes, values in name order).

    Written into ``.nic`` files so a decoder can tell that it holds the encoder's exact weights
    and coding tables.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.digest()[:8]
