from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from nicbook.data import save_image, to_image, to_tensor
from nicbook.models import FactorizedPrior
from nicbook.neural_figures import (
    plot_density_vs_histogram,
    plot_histories,
    plot_latent_histograms,
    read_training_log,
    training_photos,
)
from nicbook.train import LOG_NAME


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions: one thread is as fast, and immune to other programs on the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def photo(tmp_path):
    """One small synthetic photo on disk: smooth gradients plus a little noise."""
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0:80, 0:96]
    image = np.stack([rows * 3, columns * 2, (rows + columns) * 1.5], axis=-1)
    image = np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "photo.png"
    save_image(image, path)
    return path


def test_tensor_round_trip_is_exact():
    image = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    tensor = to_tensor(image)
    assert tensor.shape == (1, 3, 32, 48) and tensor.dtype == torch.float32
    assert float(tensor.max()) <= 1.0
    np.testing.assert_array_equal(to_image(tensor), image)


def test_to_image_clamps_out_of_range_values():
    tensor = torch.tensor([-0.5, 0.5, 1.5]).reshape(1, 3, 1, 1)
    np.testing.assert_array_equal(to_image(tensor).ravel(), [0, 128, 255])


def test_training_photos_falls_back_to_the_sample_image(monkeypatch, tmp_path):
    monkeypatch.delenv("NICBOOK_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    paths, note = training_photos()
    assert len(paths) == 2 and all(path.is_file() for path in paths)
    assert "sample image" in note
    assert training_photos()[0] == paths


def test_training_photos_uses_the_training_folder(monkeypatch, tmp_path, photo):
    (tmp_path / "data" / "train").mkdir(parents=True)
    photo.rename(tmp_path / "data" / "train" / "photo.png")
    monkeypatch.setenv("NICBOOK_DATA", str(tmp_path / "data"))
    paths, note = training_photos()
    assert [path.name for path in paths] == ["photo.png"]
    assert "1 photos" in note


def test_read_training_log_splits_records(tmp_path):
    records = [
        {"step": 10, "split": "train", "loss": 2.0},
        {"step": 10, "split": "validation", "loss": 3.0},
        {"step": 20, "split": "train", "loss": 1.0},
    ]
    (tmp_path / LOG_NAME).write_text("\n".join(json.dumps(record) for record in records) + "\n")
    log = read_training_log(tmp_path)
    assert [record["loss"] for record in log["train"]] == [2.0, 1.0]
    assert [record["step"] for record in log["validation"]] == [10]


def test_plots_draw_one_panel_per_quantity_and_one_line_per_history():
    history = [{"step": step, "loss": 1.0 / step, "bpp": 0.5, "psnr": 20.0 + step} for step in (1, 2, 3)]
    figure = plot_histories({"a": history, "b": history})
    assert len(figure.axes) == 3
    assert all(len(ax.lines) == 2 for ax in figure.axes)
    ax = plot_latent_histograms(np.random.default_rng(0).normal(size=(4, 8, 8)), [0, 2])
    assert len(ax.get_legend().get_texts()) == 2
    plt.close("all")


def test_density_plot_probabilities_match_the_entropy_model():
    torch.manual_seed(0)
    model = FactorizedPrior(8, 4).eval()
    symbols = np.random.default_rng(0).integers(-2, 3, (4, 6, 6))
    ax = plot_density_vs_histogram(model, symbols, channel=1)
    grid, probabilities = ax.lines[0].get_data()
    assert grid[0] == symbols[1].min() - 2 and grid[-1] == symbols[1].max() + 2
    values = torch.zeros(1, 4, 1, len(grid))
    values[0, 1, 0] = torch.tensor(grid, dtype=torch.float32) + model.entropy_model.medians[1]
    expected = model.entropy_model.likelihood(values)[0, 1, 0].detach().numpy()
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6)
    frequencies = [patch.get_height() for patch in ax.patches]
    assert np.isclose(sum(frequencies), 1.0)
    plt.close("all")
