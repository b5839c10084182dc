"""Small tensor operations the networks and the codec share: bounds, a parametrisation, precision, devices.

- :func:`lower_bound`: ``max(x, bound)`` that lets the gradient lift ``x`` back over the bound;
- :class:`NonNegative`: a positive parameter stored through a lower-bounded square;
- :func:`run_in_precision`: a module run in another floating-point type without changing it;
- :func:`resolve_device`: ``"auto"`` to CUDA, Apple's MPS or the CPU.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NonNegative", "coding_device", "lower_bound", "resolve_device", "run_in_precision"]


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient still flows where it would push ``x`` back above ``bound``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, bound)
        return torch.maximum(x, bound)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, bound = ctx.saved_tensors
        passes = (x >= bound) | (grad_output < 0)
        return grad_output * passes.to(grad_output.dtype), None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """Clamp ``x`` from below without killing the gradient that would lift it over ``bound``.

    A plain ``torch.clamp`` has zero gradient below the bound, so a parameter that falls under it
    could never come back; here descent steps that increase ``x`` still get through.
    """
    return _LowerBound.apply(x, torch.tensor(bound, dtype=x.dtype, device=x.device))


class NonNegative(nn.Module):
    """Maps a free parameter ``p`` to ``max(p, sqrt(minimum + pedestal))**2 - pedestal >= minimum``."""

    def __init__(self, minimum: float = 0.0, offset: float = 2.0**-18) -> None:
        super().__init__()
        self.pedestal = offset**2
        self.bound = (minimum + self.pedestal) ** 0.5

    def initial(self, value: torch.Tensor) -> torch.Tensor:
        """The stored parameter that represents ``value``."""
        return torch.sqrt(torch.clamp(value + self.pedestal, min=self.pedestal))

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return lower_bound(stored, self.bound) ** 2 - self.pedestal


def coding_device(device: torch.device) -> torch.device:
    """Where a float64 computation runs: ``device``, or the CPU for Apple's MPS (no float64 there)."""
    return torch.device("cpu") if device.type == "mps" else device


def run_in_precision(
    module: nn.Module, x: torch.Tensor, dtype: torch.dtype, memory_format: torch.memory_format = torch.contiguous_format
) -> torch.Tensor:
    """``module(x)`` with its floating-point weights and input cast to ``dtype`` (module unchanged).

    ``memory_format=torch.channels_last`` lays images and convolution kernels out with each
    position's channels side by side, which oneDNN convolves faster on CPUs. Runs on the CPU when ``x`` is
    on Apple's MPS in float64, which MPS does not have.
    """
    device = coding_device(x.device) if dtype == torch.float64 else x.device

    def cast(tensor: torch.Tensor) -> torch.Tensor:
        if not tensor.is_floating_point():
            return tensor.to(device)
        layout = memory_format if tensor.dim() == 4 else torch.preserve_format
        return tensor.to(device, dtype, memory_format=layout)

    state = {name: cast(tensor) for name, tensor in module.state_dict().items()}
    return torch.func.functional_call(module, state, (cast(x),))


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if present, else Apple MPS, else the CPU; any other name is passed to torch,
    and a CUDA or MPS device that this machine does not have raises ValueError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: this PyTorch has no CUDA device to use (try --device cpu)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r}: Apple's MPS is not available here (try --device cpu)")
    return device
