"""Quantization proxies, the factorized entropy model, the models and the RD loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicbook.entropy_models import FactorizedEntropyModel
from nicbook.models import (
    Autoencoder,
    FactorizedPrior,
    build_model,
    rd_loss,
    weights_hash,
)
from nicbook.quantization import (
    MODES,
    add_uniform_noise,
    quantize,
    round_around,
    round_straight_through,
)


@pytest.fixture
def model() -> FactorizedPrior:
    torch.manual_seed(0)
    return FactorizedPrior(8, 12)


# --------------------------------------------------------------------------- quantization


def test_uniform_noise_stays_within_half_a_step():
    torch.manual_seed(0)
    y = torch.zeros(10_000)
    noise = add_uniform_noise(y)
    assert noise.min() >= -0.5 and noise.max() < 0.5
    assert abs(float(noise.mean())) < 0.02 and abs(float(noise.var()) - 1 / 12) < 0.005
    assert not torch.equal(noise, add_uniform_noise(y))


def test_straight_through_rounds_forward_and_passes_gradient_of_one():
    y = torch.tensor([0.2, 1.7, -2.6], requires_grad=True)
    out = round_straight_through(y)
    assert out.tolist() == [0.0, 2.0, -3.0]
    out.sum().backward()
    assert y.grad.tolist() == [1.0, 1.0, 1.0]


def test_rounding_is_around_channel_medians():
    y = torch.tensor([[[[0.3]], [[0.3]]]])
    medians = torch.tensor([0.0, 0.5])
    assert round_around(y, medians).flatten().tolist() == pytest.approx([0.0, 0.5])


def test_mixed_mode_uses_noise_for_rate_and_rounding_for_distortion():
    torch.manual_seed(1)
    y = torch.randn(2, 3, 4, 4) * 3
    rate, distortion = quantize(y, "mixed")
    assert torch.equal(distortion, torch.round(y))
    assert not torch.equal(rate, torch.round(rate))
    assert (rate - y).abs().max() <= 0.5
    for mode in MODES:
        assert quantize(y, mode).for_rate.shape == y.shape
    with pytest.raises(ValueError, match="unknown quantization mode"):
        quantize(y, "bogus")


# --------------------------------------------------------------------------- entropy model


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


def test_tables_are_deterministic_and_travel_in_the_state_dict(model):
    model.entropy_model.update_tables()
    first = {k: v.clone() for k, v in model.state_dict().items() if "table_" in k}
    model.entropy_model.update_tables()
    second = {k: v for k, v in model.state_dict().items() if "table_" in k}
    assert first.keys() == second.keys() and first
    assert all(torch.equal(first[k], second[k]) for k in first)

    fresh = FactorizedPrior(8, 12)
    fresh.load_state_dict(model.state_dict())
    assert not fresh.entropy_model.tables_stale
    assert weights_hash(fresh) == weights_hash(model)
    assert np.array_equal(fresh.entropy_model.tables.frequencies, model.entropy_model.tables.frequencies)


def test_training_marks_tables_stale_and_coding_rebuilds_them(model):
    model.entropy_model.update_tables()
    model.train()
    model(torch.rand(1, 3, 32, 32))
    assert model.entropy_model.tables_stale
    model.latent_symbols(torch.rand(1, 3, 32, 32))
    assert not model.entropy_model.tables_stale


# --------------------------------------------------------------------------- models and loss


def test_factorized_prior_forward_returns_reconstruction_likelihoods_and_bits(model):
    x = torch.rand(2, 3, 32, 48)
    for mode in ("noise", "ste", "mixed"):
        model.quantization = mode
        output = model.train()(x)
        assert output.x_hat.shape == x.shape
        assert output.likelihoods.shape == (2, 12, 2, 3)
        torch.testing.assert_close(output.bits, -torch.log2(output.likelihoods).sum())
        rd_loss(output, x, 0.01)["loss"].backward()
        assert model.analysis[0].weight.grad is not None


def test_eval_forward_rounds_and_matches_the_coding_estimate(model):
    model.eval()
    model.entropy_model.update_tables()
    x = torch.rand(1, 3, 32, 32)
    output = model(x)
    symbols = model.latent_symbols(x)
    assert output.bits.item() == pytest.approx(model.estimated_bits(symbols), rel=1e-5)


def test_plain_autoencoder_has_no_rate():
    x = torch.rand(1, 3, 32, 32)
    output = Autoencoder(8, 12)(x)
    assert output.x_hat.shape == x.shape and output.likelihoods is None
    assert rd_loss(output, x, 0.5)["bpp"] == 0


def test_rd_loss_uses_mse_on_the_0_255_scale():
    x = torch.zeros(1, 3, 16, 16)
    x_hat = torch.full_like(x, 10 / 255)
    from nicbook.models import ModelOutput

    losses = rd_loss(ModelOutput(x_hat, None, torch.tensor(256.0 * 3)), x, 0.01)
    assert losses["mse"].item() == pytest.approx(100.0, rel=1e-5)
    assert losses["bpp"].item() == pytest.approx(3.0)
    assert losses["loss"].item() == pytest.approx(3.0 + 0.01 * 100.0, rel=1e-5)
    assert losses["psnr"].item() == pytest.approx(10 * np.log10(255**2 / 100), rel=1e-5)


def test_build_model_from_config_and_bad_inputs(model):
    rebuilt = build_model(model.config)
    assert isinstance(rebuilt, FactorizedPrior) and (rebuilt.N, rebuilt.M) == (8, 12)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model({"architecture": "hyperprior"})
    with pytest.raises(ValueError, match="unknown quantization"):
        FactorizedPrior(8, 12, quantization="dither")
