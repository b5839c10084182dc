"""Differentiable stand-ins for rounding while training, and rounding itself at inference.

Rounding has zero gradient almost everywhere, so training uses a proxy:

``"noise"``
    additive uniform noise in [-1/2, 1/2) (Ballé et al. 2017): the noisy latent's density is the
    latent density convolved with a unit box, which is exactly the probability of the rounded value.
``"ste"``
    straight-through rounding (Theis et al. 2017): round in the forward pass, identity gradient.
``"mixed"``
    noise for the rate term, straight-through rounding for the distortion term, so the decoder
    learns on the integer latents it will see at inference.
``"round"``
    plain rounding (inference).

Rounding is around the per-channel ``medians`` when given (the entropy model's offsets), so the
most likely value of each channel is a grid point.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = [
    "MODES",
    "Quantized",
    "add_uniform_noise",
    "quantize",
    "round_around",
    "round_straight_through",
]

#: Names accepted by :func:`quantize`.
MODES: tuple[str, ...] = ("noise", "ste", "mixed", "round")


class Quantized(NamedTuple):
    """The latents fed to the entropy model (``for_rate``) and to the synthesis (``for_distortion``)."""

    for_rate: torch.Tensor
    for_distortion: torch.Tensor


def add_uniform_noise(y: torch.Tensor) -> torch.Tensor:
    """``y + u`` with ``u ~ U[-1/2, 1/2)`` drawn independently per element."""
    return y + torch.empty_like(y).uniform_(-0.5, 0.5)


def _channel_offsets(y: torch.Tensor, medians: torch.Tensor | None) -> torch.Tensor | float:
    if medians is None:
        return 0.0
    return medians.to(y.dtype).reshape(1, -1, *([1] * (y.dim() - 2)))


def round_around(y: torch.Tensor, medians: torch.Tensor | None = None) -> torch.Tensor:
    """Round to the grid ``k + median`` of each channel (channels on dim 1); no gradient."""
    offset = _channel_offsets(y, medians)
    return torch.round(y - offset) + offset


def round_straight_through(y: torch.Tensor, medians: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`round_around` in the forward pass, identity in the backward pass."""
    return y + (round_around(y, medians) - y).detach()


def quantize(y: torch.Tensor, mode: str, medians: torch.Tensor | None = None) -> Quantized:
    """Apply the quantization proxy ``mode`` (one of :data:`MODES`) to latents ``y`` (B, C, ...)."""
    if mode == "noise":
        noisy = add_uniform_noise(y)
        return Quantized(noisy, noisy)
    if mode == "ste":
        rounded = round_straight_through(y, medians)
        return Quantized(rounded, rounded)
    if mode == "mixed":
        return Quantized(add_uniform_noise(y), round_straight_through(y, medians))
    if mode == "round":
        rounded = round_around(y, medians)
        return Quantized(rounded, rounded)
    raise ValueError(f"unknown quantization mode {mode!r}; choose one of {', '.join(MODES)}")
