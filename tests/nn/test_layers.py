"""nicbook.nn.layers: GDN and the analysis / synthesis transforms."""

from __future__ import annotations

import torch

from nicbook.nn.layers import GDN, analysis_transform, synthesis_transform


def test_transforms_downsample_and_upsample_by_16():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 48)
    y = analysis_transform(8, 12)(x)
    assert y.shape == (2, 12, 4, 3)
    assert synthesis_transform(8, 12)(y).shape == x.shape


def test_gdn_with_unit_beta_and_zero_gamma_is_identity():
    gdn = GDN(4)
    with torch.no_grad():
        gdn.gamma.copy_(gdn.gamma_reparam.initial(torch.zeros(4, 4)))
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(gdn(x), x)
    torch.testing.assert_close(
        GDN(4, inverse=True).eval()(torch.zeros(1, 4, 2, 2)), torch.zeros(1, 4, 2, 2)
    )


def test_gdn_parameters_stay_valid_after_negative_updates():
    gdn = GDN(3, beta_min=1e-6)
    with torch.no_grad():
        gdn.beta.fill_(-5.0)
        gdn.gamma.fill_(-5.0)
    assert torch.all(gdn.beta_reparam(gdn.beta) >= 1e-6)
    assert torch.all(gdn.gamma_reparam(gdn.gamma) >= 0)
    out = gdn(torch.randn(2, 3, 4, 4) * 100)
    assert torch.isfinite(out).all()


def test_gdn_divides_and_igdn_multiplies():
    x = torch.full((1, 2, 1, 1), 3.0)
    forward, inverse = GDN(2), GDN(2, inverse=True)
    norm = torch.sqrt(torch.tensor(1.0 + 0.1 * 9.0))
    torch.testing.assert_close(forward(x), x / norm, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(inverse(x), x * norm, rtol=1e-5, atol=1e-6)
