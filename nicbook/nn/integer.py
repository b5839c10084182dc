"""An exact integer version of the hyper-synthesis, so encoder and decoder choose the same tables.

In a hyperprior the decoder recomputes each latent's scale (and mean) from the hyper-latents. Were
that a floating-point network, a result one ulp apart on another machine, thread count, device or
library version could pick another coding table, and decoding would derail from there on (Ballé
et al. 2019, "Integer networks for data compression with latent-variable models").

:class:`IntegerHyperSynthesis` runs the trained ``h_s`` (transposed convolutions, convolutions,
ReLUs) in fixed point: weights are ``round(w · 2**WEIGHT_BITS)``, activations integers in units of
``2**-ACTIVATION_BITS``, and after each layer the sum is rescaled by a power of two and rounded
down. Every product and every partial sum is an integer below ``2**53``, checked when the network
is built, so computing it in float64 is exact in *any* order of summation: the result does not
depend on BLAS blocking, threads or device. Convolutions are computed as one matrix product per
kernel tap (no FFT or Winograd algorithm, which would leave the integers), and rounding uses only
multiplications by powers of two and ``floor``, which IEEE 754 defines exactly.

Its output differs from the float network's by a few units of ``2**-ACTIVATION_BITS``, far below
the spacing of the scale tables; the codec uses only this integer output, in the encoder and in
the decoder alike.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ACTIVATION_BITS", "WEIGHT_BITS", "IntegerHyperSynthesis"]

#: Fractional bits of the fixed-point activations (and of the network's output).
ACTIVATION_BITS = 8
#: Fractional bits of the fixed-point weights.
WEIGHT_BITS = 12
#: Activations are clipped to this magnitude (in real units), which bounds every partial sum.
ACTIVATION_LIMIT = 2.0**14
#: Integers up to this magnitude are exact in float64.
_EXACT = 2.0**53


class _IntegerLayer:
    """One convolution (or transposed convolution) in fixed point, with an optional ReLU after it."""

    def __init__(self, layer: nn.Conv2d | nn.ConvTranspose2d, relu: bool) -> None:
        weight = layer.weight.detach().to(torch.float64).cpu()
        if isinstance(layer, nn.ConvTranspose2d):
            # A stride-s transposed convolution is a stride-1 convolution of the input with s - 1
            # zeros between samples, by the flipped kernel with input and output channels swapped.
            weight = weight.flip(2, 3).transpose(0, 1)
            self.dilation = layer.stride[0]
            kernel = layer.kernel_size[0]
            low = kernel - 1 - layer.padding[0]
            self.padding = (low, low + layer.output_padding[0])
        else:
            if layer.stride != (1, 1):
                raise ValueError("only stride-1 convolutions have an integer version here")
            self.dilation = 1
            self.padding = (layer.padding[0], layer.padding[0])
        # Integers, one contiguous (out, in) matrix per kernel tap: (k, k, out, in).
        self.weight = torch.round(weight * 2.0**WEIGHT_BITS).permute(2, 3, 0, 1).contiguous()
        bias = layer.bias.detach().to(torch.float64).cpu()
        self.bias = torch.round(bias * 2.0 ** (WEIGHT_BITS + ACTIVATION_BITS))
        self.relu = relu
        worst = self.weight.abs().sum(dim=(0, 1, 3)) * ACTIVATION_LIMIT * 2.0**ACTIVATION_BITS
        if float((worst + self.bias.abs()).max()) >= _EXACT:
            raise ValueError("weights too large for exact fixed-point arithmetic in float64")

    def to(self, device: torch.device) -> _IntegerLayer:
        self.weight, self.bias = self.weight.to(device), self.bias.to(device)
        return self

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """Integer activations ``(C, h, w)`` (float64) to the next layer's ``(C', h', w')``.

        The zeros a transposed convolution puts between samples are never multiplied: each phase
        of the output (its position modulo the stride) is a convolution of the input itself with
        the kernel taps that land on samples.
        """
        _, height, width = u.shape
        kernel, _, out_channels, in_channels = self.weight.shape
        step, (low, high) = self.dilation, self.padding
        out_height = (height - 1) * step + low + high - kernel + 2
        out_width = (width - 1) * step + low + high - kernel + 2
        out = u.new_empty(out_channels, out_height, out_width)
        limit = ACTIVATION_LIMIT * 2.0**ACTIVATION_BITS
        for phase_y in range(step):
            for phase_x in range(step):
                rows, columns = len(range(phase_y, out_height, step)), len(range(phase_x, out_width, step))
                taps_y = _phase_taps(kernel, phase_y, low, step)
                taps_x = _phase_taps(kernel, phase_x, low, step)
                pad_y = _padding(taps_y, rows, height)
                pad_x = _padding(taps_x, columns, width)
                padded = nn.functional.pad(u, (*pad_x, *pad_y))
                total = self.bias.reshape(-1, 1).expand(-1, rows * columns).clone()
                for dy, shift_y in taps_y:
                    for dx, shift_x in taps_x:
                        top, left = shift_y + pad_y[0], shift_x + pad_x[0]
                        window = padded[:, top : top + rows, left : left + columns].reshape(in_channels, -1)
                        total += self.weight[dy, dx] @ window  # integer sums below 2**53: exact
                # Back to ACTIVATION_BITS fractional bits, rounding half up; exact in IEEE arithmetic.
                total = torch.floor(total * 2.0**-WEIGHT_BITS + 0.5)
                total = total.clamp(0.0 if self.relu else -limit, limit)
                out[:, phase_y::step, phase_x::step] = total.reshape(out_channels, rows, columns)
        return out


def _phase_taps(kernel: int, phase: int, low: int, step: int) -> list[tuple[int, int]]:
    """The kernel taps that meet input samples at output positions ``phase`` modulo ``step``, each with
    the input offset it reads (output ``step · a + phase`` reads input ``a + offset``)."""
    return [(tap, (phase + tap - low) // step) for tap in range(kernel) if (phase + tap - low) % step == 0]


def _padding(taps: list[tuple[int, int]], count: int, size: int) -> tuple[int, int]:
    """Zeros before and after an input of ``size`` samples so that every tap's window of ``count`` fits."""
    shifts = [shift for _, shift in taps]
    return max(0, -min(shifts)), max(0, count - 1 + max(shifts) - (size - 1))


class IntegerHyperSynthesis:
    """The fixed-point twin of a hyper-synthesis ``nn.Sequential`` of convolutions and ReLUs.

    Call it with integer hyper-latent symbols ``(N, h, w)`` and the per-channel offsets they are
    centred on (the hyper entropy model's medians); it returns the output maps as integers in
    units of ``2**-ACTIVATION_BITS`` (float64 tensor), identical on every machine.
    """

    def __init__(self, hyper_synthesis: nn.Sequential, device: torch.device | str = "cpu") -> None:
        layers = list(hyper_synthesis)
        self.layers = []
        for index, layer in enumerate(layers):
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                relu = index + 1 < len(layers) and isinstance(layers[index + 1], nn.ReLU)
                self.layers.append(_IntegerLayer(layer, relu).to(torch.device(device)))
            elif not isinstance(layer, nn.ReLU):
                raise ValueError(f"no integer version of {type(layer).__name__}")
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, symbols: torch.Tensor, medians: torch.Tensor) -> torch.Tensor:
        offsets = torch.round(medians.to(self.device, torch.float64) * 2.0**ACTIVATION_BITS)
        u = symbols.to(self.device, torch.float64) * 2.0**ACTIVATION_BITS + offsets.reshape(-1, 1, 1)
        limit = ACTIVATION_LIMIT * 2.0**ACTIVATION_BITS
        u = u.clamp(-limit, limit)  # an absurd symbol (an escaped value) must not break exactness
        for layer in self.layers:
            u = layer(u)
        return u
