"""nicbook.nn.models: the autoencoders' forward passes, their rate estimate, and the RD loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicbook.entropy import rans_encode
from nicbook.nn.models import Autoencoder, FactorizedPrior, ModelOutput, build_model, rd_loss


@pytest.fixture
def model() -> FactorizedPrior:
    torch.manual_seed(0)
    return FactorizedPrior(8, 12)


def test_factorized_prior_forward_returns_reconstruction_likelihoods_and_bits(model):
    x = torch.rand(2, 3, 32, 48)
    for mode in ("noise", "ste", "mixed"):
        model.quantization = mode
        model.zero_grad()
        output = model.train()(x)
        assert output.x_hat.shape == x.shape
        assert output.likelihoods.shape == (2, 12, 2, 3)
        assert torch.all((output.likelihoods > 0) & (output.likelihoods <= 1))
        rd_loss(output, x, 0.01)["loss"].backward()
        assert model.analysis[0].weight.grad is not None
        # The rate trains the learned density too.
        assert model.entropy_model.density.matrices[0].grad.abs().sum() > 0


def test_eval_bits_are_what_rans_writes_for_the_rounded_latents(model):
    """The rate estimate of a batch, checked against the size of real rANS payloads: each image's
    rounded latents, coded with the model's integer tables, take about the estimated bits."""
    model.eval()
    model.entropy_model.update_tables()
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        estimate = float(model(x).bits)
        symbols = model.entropy_model.to_symbols(model.analysis(x))
    channels = np.repeat(np.arange(12), 8 * 8)
    payload_bits = sum(
        8 * len(rans_encode(image.ravel(), channels, model.entropy_model.tables)) for image in symbols
    )
    assert estimate > 1000
    assert 0.99 * estimate <= payload_bits <= 1.01 * estimate + 2 * 64


def test_eval_forward_rounds_exactly_like_the_coder(model):
    model.eval()
    model.entropy_model.update_tables()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        output = model(x)
        symbols = model.entropy_model.to_symbols(model.analysis(x))[0]
        expected = model.synthesis(model.entropy_model.from_symbols(symbols).unsqueeze(0))
    torch.testing.assert_close(output.x_hat, expected)
    assert output.bits.item() == pytest.approx(model.entropy_model.channel_bits(symbols).sum(), rel=1e-5)


def test_plain_autoencoder_has_no_rate():
    x = torch.rand(1, 3, 32, 32)
    output = Autoencoder(8, 12)(x)
    assert output.x_hat.shape == x.shape and output.likelihoods is None
    assert rd_loss(output, x, 0.5)["bpp"] == 0


def test_rd_loss_uses_mse_on_the_0_255_scale():
    x = torch.zeros(1, 3, 16, 16)
    x_hat = torch.full_like(x, 10 / 255)
    losses = rd_loss(ModelOutput(x_hat, None, torch.tensor(256.0 * 3)), x, 0.01)
    assert losses["mse"].item() == pytest.approx(100.0, rel=1e-5)
    assert losses["bpp"].item() == pytest.approx(3.0)
    assert losses["loss"].item() == pytest.approx(3.0 + 0.01 * 100.0, rel=1e-5)
    assert losses["psnr"].item() == pytest.approx(10 * np.log10(255**2 / 100), rel=1e-5)


def test_build_model_from_config_and_bad_inputs(model):
    rebuilt = build_model(model.config)
    assert isinstance(rebuilt, FactorizedPrior) and (rebuilt.N, rebuilt.M) == (8, 12)
    assert rebuilt.name == model.name and rebuilt.quantization == model.quantization
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model({"architecture": "no-such-architecture"})
    with pytest.raises(ValueError, match="unknown quantization"):
        FactorizedPrior(8, 12, quantization="dither")
