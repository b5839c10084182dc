"""Timing helpers shared by the benchmarks; they need only torch, so a peer's environment can use them."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``function``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training_seconds_per_step(
    model: torch.nn.Module, step: Callable[[torch.Tensor], None], steps: int
) -> float:
    """Median seconds of ``step`` on a fixed batch of 8 random 128×128 patches, after one warm-up step."""
    torch.manual_seed(0)
    batch = torch.rand(8, 3, 128, 128)
    model.train()
    step(batch)
    seconds = median_seconds(lambda: step(batch), steps)
    model.eval()
    return seconds
