"""nicbook.plot.neural: training curves, latent histograms and the learned densities."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from nicbook.nn.models import FactorizedPrior
from nicbook.plot.neural import plot_density_vs_histogram, plot_histories, plot_latent_histograms


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions: one thread is as fast, and immune to other programs on the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    plt.close("all")


def test_plots_draw_one_panel_per_quantity_and_one_line_per_history():
    history = [{"step": step, "loss": 1.0 / step, "bpp": 0.5, "psnr": 20.0 + step} for step in (1, 2, 3)]
    figure = plot_histories({"a": history, "b": history})
    assert len(figure.axes) == 3
    assert all(len(ax.lines) == 2 for ax in figure.axes)
    ax = plot_latent_histograms(np.random.default_rng(0).normal(size=(4, 8, 8)), [0, 2])
    assert len(ax.get_legend().get_texts()) == 2


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
    counts = np.bincount(symbols[1].ravel() - symbols[1].min())
    shown = sorted(height for height in frequencies if height > 0)
    assert shown == pytest.approx(sorted(counts[counts > 0] / symbols[1].size))


def test_side_information_figure_shows_the_choice():
    pytest.importorskip("torch")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nicbook.codec import adaptive
    from nicbook.plot.neural import plot_side_information

    levels = np.array([0, 6, 6, 7, 12])
    gains = np.array([2, 2, 0, 4, 2])
    shifts = np.array([-3, -1, 0, 1, 2, 3])
    choice = adaptive.ScaleChoice(block=2, levels=levels, gains=gains, shifts=shifts)
    image = np.zeros((64, 96, 3), dtype=np.uint8)
    figure = plot_side_information(image, choice, (5, 4, 6), "picture", "model")
    picture, blocks, scales, gain_axis = figure.axes[:4]
    np.testing.assert_array_equal(blocks.images[0].get_array(), shifts.reshape(2, 3))
    heights = [patch.get_height() for patch in scales.patches]
    np.testing.assert_array_equal(heights, np.bincount(levels, minlength=adaptive.LEVELS))
    heights = [patch.get_height() for patch in gain_axis.patches]
    np.testing.assert_array_equal(heights, np.bincount(gains, minlength=len(adaptive.GAINS)))
    assert picture.get_title() == "picture" and "32×32" in blocks.get_title()
    plt.close(figure)


def test_scale_maps_show_the_tables_and_bits_of_the_costliest_channel():
    pytest.importorskip("torch")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from nicbook.codec.hyperprior import HyperLatents
    from nicbook.nn.models import MeanScaleHyperprior
    from nicbook.plot.neural import plot_scale_maps

    model = MeanScaleHyperprior(4, 3).eval()
    levels = model.conditional.scale_levels.numpy()
    symbols = np.zeros((3, 2, 4), dtype=np.int64)
    symbols[1] = [[5, -5, 0, 9], [1, 2, 3, 4]]  # channel 1 holds the large values
    indices = np.full((3, 2, 4), 10, dtype=np.int64)
    indices[1, 0, 0] = 40
    means = torch.full((3, 2, 4), 0.25, dtype=torch.float64)
    latents = HyperLatents(symbols, np.zeros((4, 1, 1), dtype=np.int64), indices, means, 1, 1)
    figure = plot_scale_maps(np.zeros((32, 64, 3), dtype=np.uint8), latents, model)
    _, values, mean_axis, scale_axis, bit_axis = figure.axes[:5]
    assert "channel 1" in values.get_title()
    np.testing.assert_allclose(values.images[0].get_array(), symbols[1] + 0.25)
    np.testing.assert_allclose(mean_axis.images[0].get_array(), np.full((2, 4), 0.25))
    assert scale_axis.images[0].get_array()[0, 0] == levels[40]
    assert scale_axis.images[0].get_array()[1, 3] == levels[10]
    tables = model.conditional.tables
    expected = tables.information_bits(symbols.ravel(), indices.ravel()).reshape(3, 2, 4).sum(axis=0)
    np.testing.assert_allclose(bit_axis.images[0].get_array(), expected)
    plt.close(figure)
