"""Layers of the neural codec: GDN, the analysis / synthesis transforms and the hyper-transforms.

Generalized divisive normalization (GDN, Ballé et al. 2017) divides each channel by a learned
combination of the squared activations of all channels at the same position::

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij * x_j**2)

and inverse GDN multiplies instead. ``beta`` must stay positive and ``gamma`` non-negative for
the square root to exist, so both are stored through a lower-bounded square
reparameterisation (:class:`nicbook.nn.ops.NonNegative`): the optimiser sees ``p`` and the layer uses
``max(p, bound)**2 - pedestal``, which keeps gradients well scaled near zero.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nicbook.nn.ops import NonNegative

__all__ = [
    "GDN",
    "analysis_transform",
    "hyper_analysis_transform",
    "hyper_synthesis_transform",
    "synthesis_transform",
]


class GDN(nn.Module):
    """Generalized divisive normalization over channels (``inverse=True``: IGDN, its approximate inverse).

    Parameters
    ----------
    channels:
        Number of channels normalised together.
    inverse:
        Multiply by the normaliser instead of dividing (used in the synthesis transform).
    beta_min:
        Lower bound of ``beta`` that keeps the normaliser away from zero.
    gamma_init:
        Initial diagonal of ``gamma`` (off-diagonal terms start at zero).
    """

    def __init__(
        self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1
    ) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = NonNegative(minimum=beta_min)
        self.gamma_reparam = NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.initial(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.initial(gamma_init * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(channels, channels, 1, 1)
        norm = F.conv2d(x * x, gamma, beta)
        if torch.is_grad_enabled():
            return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)
        # Coding: in place, two passes fewer over the largest tensors of the transforms.
        return (norm.sqrt_() if self.inverse else norm.rsqrt_()).mul_(x)

    def extra_repr(self) -> str:
        return f"{self.beta.numel()}, inverse={self.inverse}"


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=5, stride=2, padding=2)


def _deconv(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(
        in_channels, out_channels, kernel_size=5, stride=2, padding=2, output_padding=1
    )


def analysis_transform(N: int, M: int) -> nn.Sequential:
    """Encoder ``g_a``: RGB ``(B, 3, H, W)`` to latents ``(B, M, H/16, W/16)`` (four stride-2 convs, GDN between)."""
    return nn.Sequential(_conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N), GDN(N), _conv(N, M))


def synthesis_transform(N: int, M: int) -> nn.Sequential:
    """Decoder ``g_s``: latents ``(B, M, h, w)`` to RGB ``(B, 3, 16h, 16w)`` (transposed convs, IGDN between)."""
    return nn.Sequential(
        _deconv(M, N),
        GDN(N, inverse=True),
        _deconv(N, N),
        GDN(N, inverse=True),
        _deconv(N, N),
        GDN(N, inverse=True),
        _deconv(N, 3),
    )


def hyper_analysis_transform(N: int, M: int) -> nn.Sequential:
    """Hyper-encoder ``h_a``: latents ``(B, M, h, w)`` to hyper-latents ``(B, N, h/4, w/4)`` (Ballé et al. 2018)."""
    return nn.Sequential(
        nn.Conv2d(M, N, kernel_size=3, stride=1, padding=1),
        nn.ReLU(),
        _conv(N, N),
        nn.ReLU(),
        _conv(N, N),
    )


def hyper_synthesis_transform(N: int, hidden: int, outputs: int) -> nn.Sequential:
    """Hyper-decoder ``h_s``: hyper-latents ``(B, N, h, w)`` to ``outputs`` parameter maps ``(B, outputs, 4h, 4w)``.

    Two transposed convolutions (to ``N`` then ``hidden`` channels) with ReLUs, then a 3×3
    convolution; ReLU is the one non-linearity, so the layer stack has an exact integer version
    (:mod:`nicbook.nn.integer`).
    """
    return nn.Sequential(
        _deconv(N, N),
        nn.ReLU(),
        _deconv(N, hidden),
        nn.ReLU(),
        nn.Conv2d(hidden, outputs, kernel_size=3, stride=1, padding=1),
    )
