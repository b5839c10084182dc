"""nicbook.nn.rounding: rounding and its training proxies (uniform noise, straight-through)."""

from __future__ import annotations

import pytest
import torch

from nicbook.nn.rounding import MODES, add_uniform_noise, quantize, round_around, round_straight_through


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
