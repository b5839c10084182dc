"""Fixtures of the .nic tests: a tiny untrained model, a crop of the sample image and its files."""

from __future__ import annotations

import numpy as np
import pytest

from nicbook.codec import compress
from nicbook.data import sample_image
from nicbook.entropy import FrequencyTables


@pytest.fixture(scope="session")
def model(tiny_model):
    return tiny_model()


@pytest.fixture(scope="session")
def image() -> np.ndarray:
    """An 80×96 crop of the sample image (5×6 latent positions)."""
    return sample_image()[100:180, 200:296].copy()


@pytest.fixture(scope="session")
def encoded(model, image) -> bytes:
    """The crop coded with per-image scales (format version 6, the default)."""
    return compress(image, model)


@pytest.fixture(scope="session")
def static_encoded(model, image) -> bytes:
    """The crop coded with the model's own tables (format version 5)."""
    return compress(image, model, adaptive=False)


@pytest.fixture(scope="session")
def laplace_tables():
    """``laplace_tables(widths=(0.3, 1, 3, 10))``: one table per width, a discrete Laplace
    distribution over -40..40 (shaped like the tables of trained channels)."""

    def make(widths=(0.3, 1.0, 3.0, 10.0)) -> FrequencyTables:
        values = np.arange(-40, 41)
        return FrequencyTables.from_pmfs([np.exp(-np.abs(values) / w) for w in widths], [-40] * len(widths))

    return make
