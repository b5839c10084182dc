"""Shared fixtures: the sample image, and Kodak / training data that skip when absent."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

from nicbook import data
from nicbook.errors import DataNotFoundError

# CI replays the same examples on every run (a failure there is reproducible from its log);
# elsewhere hypothesis explores new examples each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def sample() -> np.ndarray:
    """The embedded sample image (600×512 RGB), available on every machine."""
    return data.sample_image()


@pytest.fixture(scope="session")
def kodak_paths():
    """Paths of the 24 Kodak images; skips the test when they are not on this machine."""
    if not data.kodak_available():
        pytest.skip(f"Kodak images absent: set {data.DATA_ENV} to a folder with kodak/ to run this")
    return data.kodak_paths()


@pytest.fixture(scope="session")
def training_paths():
    """Paths of the training photos; skips the test when they are not on this machine."""
    try:
        return data.training_image_paths()
    except DataNotFoundError as error:
        pytest.skip(f"training images absent: {error}")
