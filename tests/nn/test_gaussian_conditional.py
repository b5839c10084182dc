"""The Gaussian conditional and the hyperprior models' rate: probabilities, tables, training pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicbook.entropy import rans_decode, rans_encode
from nicbook.nn.entropy_models import GAUSSIAN_SCALES, SCALE_BOUND, GaussianConditional
from nicbook.nn.models import MeanScaleHyperprior, ScaleHyperprior, build_model, rd_loss


@pytest.fixture(scope="module")
def conditional() -> GaussianConditional:
    return GaussianConditional()


@pytest.mark.parametrize("scale, mean", [(0.3, 0.0), (2.0, 0.4), (17.0, -3.2)])
def test_probabilities_over_the_integers_sum_to_one(conditional, scale, mean):
    grid = torch.arange(-400, 401, dtype=torch.float64) + round(mean)
    probabilities = conditional.likelihood(grid, torch.full_like(grid, scale), torch.full_like(grid, mean))
    assert float(probabilities.sum()) == pytest.approx(1.0, abs=1e-6)
    # The most likely integer is the one nearest the mean.
    assert float(grid[probabilities.argmax()]) == round(mean)


def test_narrow_scales_are_widened_to_the_bound(conditional):
    values = torch.tensor([0.0, 1.0])
    narrow = conditional.likelihood(values, torch.tensor([1e-6, 1e-6]))
    bound = conditional.likelihood(values, torch.tensor([SCALE_BOUND, SCALE_BOUND]))
    assert torch.equal(narrow, bound)


def test_each_table_codes_like_its_gaussian(conditional):
    """Expected code length of a rounded Gaussian under the integer table of its scale, against the
    Gaussian's own entropy: the price of 16-bit tables, small even for the widest."""
    tables = conditional.tables
    assert tables.num_tables == len(GAUSSIAN_SCALES) == conditional.scale_levels.numel()
    for index in (0, 20, 40, 63):
        scale = GAUSSIAN_SCALES[index]
        grid = np.arange(-int(5 * scale) - 2, int(5 * scale) + 3)
        exact = conditional.likelihood(torch.from_numpy(grid).double(), torch.full((grid.size,), scale)).numpy()
        exact_entropy = -(exact * np.log2(exact)).sum()
        code_length = (exact * tables.information_bits(grid, np.full(grid.size, index))).sum()
        assert exact_entropy <= code_length <= exact_entropy * 1.01 + 0.01


def test_tables_code_gaussian_samples_near_their_information(conditional):
    rng = np.random.default_rng(0)
    indices = rng.integers(0, len(GAUSSIAN_SCALES), 20000)
    values = np.round(rng.normal(0.0, np.array(GAUSSIAN_SCALES)[indices])).astype(np.int64)
    data = rans_encode(values, indices, conditional.tables)
    assert np.array_equal(rans_decode(data, indices, conditional.tables), values)
    information = conditional.tables.information_bits(values, indices).sum()
    assert 8 * len(data) == pytest.approx(information, rel=0.02)


def test_tables_are_part_of_the_state_and_survive_loading():
    first, second = GaussianConditional(), GaussianConditional()
    state = first.state_dict()
    assert {"scale_levels", "table_frequencies"} <= set(state)
    second.load_state_dict(state)
    assert np.array_equal(second.tables.frequencies, first.tables.frequencies)


@pytest.mark.parametrize("kind", [ScaleHyperprior, MeanScaleHyperprior])
def test_rate_is_latents_plus_side_information_and_trains(kind):
    torch.manual_seed(0)
    model = kind(8, 12, quantization="mixed")
    x = torch.rand(2, 3, 64, 64)
    output = model(x)
    assert 0 < float(output.side_bits.detach()) < float(output.bits.detach())
    y_bits = -torch.log2(output.likelihoods).sum()
    assert float(output.bits.detach()) == pytest.approx(float((y_bits + output.side_bits).detach()), rel=1e-5)
    losses = rd_loss(output, x, 0.01)
    losses["loss"].backward()
    assert model.hyper_synthesis[0].weight.grad.abs().sum() > 0
    assert model.hyper_analysis[0].weight.grad.abs().sum() > 0


def test_build_model_knows_the_hyperpriors():
    for architecture, kind in (("hyperprior", ScaleHyperprior), ("mean-scale", MeanScaleHyperprior)):
        model = build_model({"architecture": architecture, "N": 8, "M": 12, "quantization": "ste"})
        assert type(model) is kind and model.config["architecture"] == architecture
        assert model.quantization == "ste"
