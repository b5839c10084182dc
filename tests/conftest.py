"""Shared fixtures: the sample image, Kodak / training data that skip when absent, and small models,
photos and training settings that keep the neural tests fast.

The test files mirror the package (``tests/nn/test_models.py`` tests :mod:`nicbook.nn.models`) and
are imported in pytest's importlib mode, so helpers shared between files live here, as fixtures.
"""

from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from PIL import Image

from nicbook import data
from nicbook.errors import DataNotFoundError

# CI replays the same examples on every run (a failure there is reproducible from its log);
# elsewhere hypothesis explores new examples each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def sample() -> np.ndarray:
    """The embedded sample image (Kodak's kodim23, 512 rows of 768, RGB), available on every machine."""
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


@pytest.fixture(scope="session")
def tiny_model():
    """``tiny_model(seed=0, N=8, M=12)``: an untrained factorized-prior model in eval mode, with tables.

    Its weights depend on ``seed`` only, so two calls with the same arguments give equal models.
    """
    import torch

    from nicbook.nn.models import FactorizedPrior

    def make(seed: int = 0, N: int = 8, M: int = 12) -> FactorizedPrior:
        torch.manual_seed(seed)
        model = FactorizedPrior(N, M).eval()
        model.entropy_model.update_tables()
        return model

    return make


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> list[Path]:
    """Four small smooth, slightly noisy RGB photos (72×88) on disk, standing in for training photos."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:72, 0:88]
    paths = []
    for index in range(4):
        channels = [np.sin(cols / (5 + index) + c) * 80 + np.cos(rows / 9) * 30 + 120 for c in range(3)]
        image = np.clip(np.stack(channels, -1) + rng.normal(0, 6, (72, 88, 3)), 0, 255).astype(np.uint8)
        path = folder / f"photo{index}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(out_dir, steps, **changes)``: a :class:`~nicbook.nn.config.TrainConfig` of a few
    CPU steps of a tiny model on 32-pixel patches, validating and checkpointing only at the end."""
    from nicbook.nn.config import TrainConfig

    def make(out_dir: Path | None, steps: int, **changes) -> TrainConfig:
        options = {
            "N": 8, "M": 12, "steps": steps, "batch_size": 2, "patch_size": 32, "lr": 5e-3, "device": "cpu",
            "out_dir": str(out_dir) if out_dir else None, "validation_patches": 2,
            "validation_every": 1000, "checkpoint_every": 1000, "log_every": 1,
        }  # fmt: skip
        return TrainConfig(**{**options, **changes})

    return make


@pytest.fixture(scope="session")
def with_crc():
    """``with_crc(body, byteorder="big")``: a file body (without its CRC) with a valid CRC-32
    appended, as a forger would (``.nic`` files are big-endian, block-coder streams little)."""

    def append(body: bytes, byteorder: str = "big") -> bytes:
        return body + zlib.crc32(body).to_bytes(4, byteorder)

    return append


@pytest.fixture(scope="module")
def benchmarks_importable():
    """The ``benchmarks/`` folder on the import path, as when a benchmark runs, for this test module:
    ``importlib.import_module("rd")`` then imports ``benchmarks/rd.py``."""
    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.path.remove(folder)
