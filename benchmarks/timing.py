"""Timing helpers shared by the benchmarks; torch only for the training step, so a peer's
environment (or a benchmark without torch) can use them."""

from __future__ import annotations

import functools
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


def training_batch() -> torch.Tensor:
    """The fixed batch the training steps are timed on: 8 random 128×128 patches (seed 0)."""
    import torch

    return torch.rand(8, 3, 128, 128, generator=torch.Generator().manual_seed(0))


def alternate_training(steps: Mapping[str, Callable[[torch.Tensor], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each training ``step`` on :func:`training_batch`, the steps alternating
    as in :func:`alternate`, after one warm-up step each (the models in train mode already)."""
    batch = training_batch()
    for step in steps.values():
        step(batch)
    return alternate({name: functools.partial(step, batch) for name, step in steps.items()}, repeats)
