"""Timing helpers shared by the benchmarks; torch only for the training step, so a peer's
environment (or a benchmark without torch) can use them."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def alternate(functions: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, the functions called in turn ``repeats`` times, so that
    a change in the machine's load falls on every side alike."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``function``."""
    return alternate({"function": function}, repeats)["function"]


def training_seconds_per_step(
    model: torch.nn.Module, step: Callable[[torch.Tensor], None], steps: int
) -> float:
    """Median seconds of ``step`` on a fixed batch of 8 random 128×128 patches, after one warm-up step."""
    import torch

    torch.manual_seed(0)
    batch = torch.rand(8, 3, 128, 128)
    model.train()
    step(batch)
    seconds = median_seconds(lambda: step(batch), steps)
    model.eval()
    return seconds
