"""Coding a hyperprior model's latents: side information first, then each latent with the table it picks.

The payload of a ``.nic`` file of version 7 (4 before the rANS coder's format 2)::

    side length (uvarint) | hyper-latents z (rANS, the model's factorized tables) | latents y (rANS)

The encoder rounds the hyper-latents ``z = h_a(y)`` to symbols and codes them like a factorized
model's latents (:mod:`nicbook.codec.latents`). From those symbols both sides run the integer
hyper-synthesis (:mod:`nicbook.nn.integer`), which gives every latent a scale (and, for the
mean-scale model, a mean) in fixed point; the scale picks one of the Gaussian tables
(:class:`~nicbook.nn.entropy_models.GaussianConditional`) and ``round(y - mean)`` is coded with it.
Everything that selects a table is an integer computed exactly, so a file decodes to the same
symbols on any machine, thread count or device; only the synthesis transform, which turns them
into pixels, runs in floating point (float32, or float64 for an image that does not depend on
the thread count: see :mod:`nicbook.codec`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nicbook.codec.latents import decode as decode_static
from nicbook.codec.latents import encode as encode_static
from nicbook.entropy import decode_uvarint, encode_uvarint, rans_decode, rans_encode
from nicbook.entropy.rans import STREAM_FORMAT, check_capacity
from nicbook.errors import BitstreamError
from nicbook.nn.integer import ACTIVATION_BITS, IntegerHyperSynthesis
from nicbook.nn.models import ScaleHyperprior

__all__ = ["HyperLatents", "decode", "encode", "estimated_bits", "gaussian_parameters", "side_shape"]

#: Downsampling of the hyper-analysis: hyper-latent positions per latent position, on each side.
HYPER_STRIDE = 4


@dataclass(frozen=True)
class HyperLatents:
    """What a hyperprior file holds: latent symbols ``(M, h, w)``, hyper-latent symbols ``(N, h', w')``,
    the table of every latent and the means they are centred on (``None`` for the scale-only model),
    and the bytes each stream took."""

    symbols: np.ndarray
    side_symbols: np.ndarray
    table_indices: np.ndarray
    means: torch.Tensor | None
    side_bytes: int
    latent_bytes: int

    def latents(self) -> torch.Tensor:
        """The dequantized latents ``(M, h, w)`` in float64: ``symbols + means``."""
        values = torch.from_numpy(self.symbols).to(torch.float64)
        return values if self.means is None else values + self.means.cpu()


def side_shape(model: ScaleHyperprior, latent_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The hyper-latents' shape ``(N, ceil(h/4), ceil(w/4))`` for latents of ``latent_shape``."""
    _, height, width = latent_shape
    return model.N, -(-height // HYPER_STRIDE), -(-width // HYPER_STRIDE)


def gaussian_parameters(
    model: ScaleHyperprior, side_symbols: np.ndarray, latent_shape: tuple[int, int, int]
) -> tuple[np.ndarray, torch.Tensor | None]:
    """Table index ``(M, h, w)`` and means (float64, or ``None``) of every latent, from the side symbols.

    Runs the integer hyper-synthesis; the result is the same bit for bit everywhere.
    """
    channels, height, width = latent_shape
    integer = IntegerHyperSynthesis(model.hyper_synthesis)
    medians = model.hyper_entropy_model.medians
    output = integer(torch.from_numpy(side_symbols), medians)[:, :height, :width]
    scales, means = (output[:channels], output[channels:]) if output.shape[0] == 2 * channels else (output, None)
    indices = model.conditional.table_indices(scales, ACTIVATION_BITS)
    return indices, None if means is None else means * 2.0**-ACTIVATION_BITS


def estimated_bits(model: ScaleHyperprior, latents: HyperLatents) -> tuple[float, float]:
    """The model's information ``-Σ log2 P`` of the side symbols and of the latent symbols, in bits:
    what the two streams of the file cost, less the rANS coder's small overhead."""
    side = float(model.hyper_entropy_model.channel_bits(latents.side_symbols).sum())
    tables = model.conditional.tables
    return side, float(tables.information_bits(latents.symbols, latents.table_indices).sum())


@torch.no_grad()
def encode(model: ScaleHyperprior, y: torch.Tensor, z: torch.Tensor | None = None) -> tuple[bytes, HyperLatents]:
    """The payload for latents ``y`` ``(1, M, h, w)``: side information, then the latents.

    The side information codes the hyper-latents ``z`` ``(1, N, h/4, w/4)``, by default the
    hyper-analysis of ``y`` (:mod:`nicbook.codec.refinement` may pass others).
    """
    model.hyper_entropy_model.ensure_tables()
    z = model.hyper_latents(y) if z is None else z
    if z.shape[1:] != side_shape(model, tuple(y.shape[1:])):
        raise ValueError(f"hyper-latents of shape {tuple(z.shape)} for latents of shape {tuple(y.shape)}")
    side_symbols = model.hyper_entropy_model.to_symbols(z[0])
    indices, means = gaussian_parameters(model, side_symbols, tuple(y.shape[1:]))
    centred = y[0].to(torch.float64).cpu() - (0.0 if means is None else means.cpu())
    symbols = torch.round(centred).to(torch.int64).numpy()
    side = encode_static(side_symbols, model.hyper_entropy_model.tables)
    latents = rans_encode(symbols.reshape(-1), indices.reshape(-1), model.conditional.tables)
    decoded = HyperLatents(symbols, side_symbols, indices, means, len(side), len(latents))
    return encode_uvarint(len(side)) + side + latents, decoded


def decode(
    model: ScaleHyperprior, payload: bytes, shape: tuple[int, int, int], stream_format: int = STREAM_FORMAT
) -> HyperLatents:
    """Inverse of :func:`encode` (``stream_format``: that of the rANS streams, 1 for version 4);
    raises :class:`BitstreamError` for a corrupt or truncated payload."""
    if shape[0] != model.M:
        raise BitstreamError(f"{shape[0]} latent channels but the model has {model.M}")
    model.hyper_entropy_model.ensure_tables()
    side_length, position = decode_uvarint(payload, 0)
    if position + side_length > len(payload):
        raise BitstreamError("truncated side information in the latent payload")
    side = payload[position : position + side_length]
    side_symbols = decode_static(side, side_shape(model, shape), model.hyper_entropy_model.tables, stream_format)
    indices, means = gaussian_parameters(model, side_symbols, shape)
    tables = model.conditional.tables
    latents = payload[position + side_length :]
    check_capacity(len(latents), np.bincount(indices.ravel(), minlength=tables.num_tables), tables, f"{shape} latents")
    symbols = rans_decode(latents, indices.reshape(-1), tables, stream_format).reshape(shape)
    return HyperLatents(symbols, side_symbols, indices, means, len(side), len(latents))
