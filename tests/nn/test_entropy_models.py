"""nicbook.nn.entropy_models: the learned factorized density, latents ↔ symbols, and its coding tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicbook.entropy import entropy, rans_encode
from nicbook.nn.entropy_models import FactorizedEntropyModel


@pytest.fixture
def distinct_channels() -> FactorizedEntropyModel:
    """Three channels of different widths: channel 0 narrow, 1 as initialised, 2 wide."""
    torch.manual_seed(0)
    entropy_model = FactorizedEntropyModel(3)
    with torch.no_grad():
        entropy_model.density.matrices[0][0] += 1.5
        entropy_model.density.matrices[0][2] -= 1.0
    entropy_model.update_tables()
    return entropy_model


def sample_symbols(entropy_model: FactorizedEntropyModel, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Integer symbols ``(C, *shape)`` drawn from each channel's own quantized density."""
    rng = np.random.default_rng(seed)
    pmfs, firsts, _ = entropy_model.table_pmfs()
    return np.stack(
        [first + rng.choice(pmf.size, shape, p=pmf / pmf.sum()) for pmf, first in zip(pmfs, firsts)]
    )


def test_likelihoods_sum_to_one_over_the_integer_grid():
    torch.manual_seed(0)
    entropy_model = FactorizedEntropyModel(5)
    medians = entropy_model.current_medians()
    grid = torch.arange(-400, 401, dtype=torch.float32)
    values = grid.reshape(1, 1, -1, 1) + medians.reshape(1, -1, 1, 1)
    totals = entropy_model.likelihood(values).double().sum(dim=(0, 2, 3))
    assert torch.allclose(totals, torch.ones(5, dtype=torch.float64), atol=1e-4)


def test_likelihood_is_bounded_below_and_differentiable_far_in_the_tails():
    entropy_model = FactorizedEntropyModel(2)
    y = torch.tensor([[[[1e4]], [[-1e4]]]], requires_grad=True)
    likelihood = entropy_model.likelihood(y)
    assert torch.all(likelihood >= 1e-9)
    (-torch.log2(likelihood).sum()).backward()
    assert torch.isfinite(y.grad).all()


def test_channel_entropies_price_each_channel_and_find_the_unused_ones():
    torch.manual_seed(0)
    entropy_model = FactorizedEntropyModel(3)
    with torch.no_grad():
        entropy_model.density.matrices[0][0] += 30.0  # a CDF that rises within a fraction of a step
    entropies = entropy_model.channel_entropies()
    medians = entropy_model.current_medians()
    grid = torch.arange(-300, 301, dtype=torch.float32)
    mass = entropy_model.likelihood(grid.reshape(1, 1, -1, 1) + medians.reshape(1, -1, 1, 1)).double()
    direct = -(mass * torch.log2(mass)).sum(dim=(0, 2, 3))
    torch.testing.assert_close(entropies, direct, atol=1e-3, rtol=1e-3)
    assert entropies[0] < 0.05 and entropies[1:].min() > 1


def test_quantile_search_inverts_the_cdf():
    torch.manual_seed(0)
    density = FactorizedEntropyModel(4).density.double()
    quantiles = density.quantiles([0.1, 0.5, 0.9])
    cdf = torch.sigmoid(density.logits_cumulative(quantiles.unsqueeze(1))).squeeze(1)
    torch.testing.assert_close(cdf, torch.tensor([[0.1, 0.5, 0.9]] * 4, dtype=torch.float64))


def test_symbols_are_latents_rounded_around_the_medians(distinct_channels):
    medians = distinct_channels.medians
    assert medians.abs().max() > 0.01  # otherwise "around the medians" would go untested
    symbols = np.random.default_rng(1).integers(-20, 21, (2, 3, 4, 5))
    exact = torch.from_numpy(symbols).float() + medians.reshape(-1, 1, 1)
    latents = exact + torch.empty_like(exact).uniform_(-0.45, 0.45)
    found = distinct_channels.to_symbols(latents)
    assert found.dtype == np.int64 and np.array_equal(found, symbols)
    back = distinct_channels.from_symbols(symbols, torch.float64)
    assert back.dtype == torch.float64
    torch.testing.assert_close(back, exact.double())


def test_channel_bits_of_typical_symbols_approach_each_channel_s_entropy(distinct_channels):
    """Symbols drawn from the model's own distribution cost about their entropy, channel by channel
    (the law of large numbers), and rANS with the integer tables writes them in about as many bits."""
    symbols = sample_symbols(distinct_channels, (64, 64))
    bits = distinct_channels.channel_bits(symbols)
    assert bits.shape == (3,) and bits.dtype == np.float64
    pmfs, _, _ = distinct_channels.table_pmfs()
    entropies = np.array([entropy(pmf) for pmf in pmfs])
    assert entropies[0] < entropies[1] < entropies[2]
    np.testing.assert_allclose(bits / 64**2, entropies, atol=0.1)
    channels = np.repeat(np.arange(3), 64**2)
    payload_bits = 8 * len(rans_encode(symbols.ravel(), channels, distinct_channels.tables))
    assert 0.995 * bits.sum() <= payload_bits <= 1.01 * bits.sum() + 128


def test_tables_are_deterministic_and_travel_in_the_state_dict(distinct_channels):
    first = {k: v.clone() for k, v in distinct_channels.state_dict().items() if "table_" in k}
    distinct_channels.update_tables()
    second = {k: v for k, v in distinct_channels.state_dict().items() if "table_" in k}
    assert first.keys() == second.keys() and first
    assert all(torch.equal(first[k], second[k]) for k in first)

    fresh = FactorizedEntropyModel(3)
    fresh.load_state_dict(distinct_channels.state_dict())
    assert not fresh.tables_stale
    assert torch.equal(fresh.medians, distinct_channels.medians)
    assert np.array_equal(fresh.tables.frequencies, distinct_channels.tables.frequencies)
    assert np.array_equal(fresh.tables.offsets, distinct_channels.tables.offsets)


def test_training_marks_tables_stale_and_coding_rebuilds_them(distinct_channels):
    distinct_channels.train()
    distinct_channels.likelihood(torch.randn(1, 3, 4, 4))
    assert distinct_channels.tables_stale
    distinct_channels.eval()
    distinct_channels.to_symbols(torch.randn(3, 4, 4))
    assert not distinct_channels.tables_stale
