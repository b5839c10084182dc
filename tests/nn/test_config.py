"""nicbook.nn.config: what defines a training run, and the checks on its numbers."""

from __future__ import annotations

import pytest

from nicbook.nn.config import TrainConfig, check_config


def test_the_defaults_make_sense():
    config = TrainConfig()
    assert check_config(config) is config


@pytest.mark.parametrize(
    "changes",
    [{"steps": 0}, {"batch_size": 0}, {"patch_size": 8}, {"patch_size": 40}, {"lmbda": -0.1}, {"lmbda": float("nan")}],
)
def test_nonsense_numbers_are_refused(changes):
    with pytest.raises(ValueError):
        check_config(TrainConfig(**changes))
