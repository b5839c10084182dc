"""The integer hyper-synthesis: close to the float network, and exactly the same result everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicbook.nn.integer import ACTIVATION_BITS, IntegerHyperSynthesis
from nicbook.nn.models import MeanScaleHyperprior, ScaleHyperprior


def _hyper_synthesis(seed: int, kind=MeanScaleHyperprior, N: int = 16, M: int = 24):
    torch.manual_seed(seed)
    return kind(N, M).eval().hyper_synthesis


def _inputs(seed: int, N: int = 16, shape=(5, 7)):
    generator = torch.Generator().manual_seed(seed)
    symbols = torch.randint(-6, 7, (N, *shape), generator=generator)
    medians = torch.randn(N, generator=generator)
    return symbols, medians


@pytest.mark.parametrize("kind", [ScaleHyperprior, MeanScaleHyperprior])
def test_integer_network_follows_the_float_network(kind):
    h_s = _hyper_synthesis(0, kind)
    symbols, medians = _inputs(1)
    integer = IntegerHyperSynthesis(h_s)(symbols, medians) * 2.0**-ACTIVATION_BITS
    with torch.no_grad():
        x = (symbols.double() + (torch.round(medians.double() * 256) / 256).reshape(-1, 1, 1)).unsqueeze(0)
        reference = h_s.double()(x)[0]
    assert integer.shape == reference.shape == (h_s[-1].out_channels, 20, 28)
    # Each layer rounds to 2**-8; the errors stay a few such units, far below the table spacing.
    assert float((integer - reference).abs().max()) < 0.02
    assert float(reference.abs().max()) > 0.05  # the comparison is not between two zero maps


def test_integer_network_output_is_integers():
    output = IntegerHyperSynthesis(_hyper_synthesis(2))(*_inputs(3))
    assert output.dtype == torch.float64
    assert torch.equal(output, torch.round(output))


def test_same_result_for_any_thread_count_and_weight_precision():
    h_s = _hyper_synthesis(4)
    symbols, medians = _inputs(5, shape=(9, 11))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = IntegerHyperSynthesis(h_s)(symbols, medians)
        torch.set_num_threads(2)
        two = IntegerHyperSynthesis(h_s)(symbols, medians)
    finally:
        torch.set_num_threads(threads)
    as_double = IntegerHyperSynthesis(h_s.double())(symbols, medians.double())
    assert torch.equal(one, two) and torch.equal(one, as_double)


def test_float_path_is_fragile_where_the_integer_path_is_not():
    """The trap the integer network avoids: a float hyper-synthesis run twice in ways that differ in
    the last bits (float32 vs float64 here; threads or devices in practice) chooses other tables for
    some latents, while the integer network gives identical output both ways."""
    torch.manual_seed(6)
    model = MeanScaleHyperprior(16, 24).eval()
    symbols, medians = _inputs(7, shape=(24, 24))
    levels = model.conditional.scale_levels
    x = (symbols.double() + medians.double().reshape(-1, 1, 1)).unsqueeze(0)
    with torch.no_grad():
        scales64 = model.hyper_synthesis.double()(x)[0, :24].abs() * 40
        scales32 = model.hyper_synthesis.float()(x.float())[0, :24].double().abs() * 40
    naive64 = torch.searchsorted(levels[:-1].contiguous(), scales64.contiguous())
    naive32 = torch.searchsorted(levels[:-1].contiguous(), scales32.contiguous())
    assert (naive64 != naive32).any(), "the float paths should disagree on some table"
    exact32 = IntegerHyperSynthesis(model.hyper_synthesis.float())(symbols, medians)
    exact64 = IntegerHyperSynthesis(model.hyper_synthesis.double())(symbols, medians.double())
    assert torch.equal(exact32, exact64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_same_result_on_a_gpu():
    h_s = _hyper_synthesis(8)
    symbols, medians = _inputs(9)
    on_cpu = IntegerHyperSynthesis(h_s)(symbols, medians)
    on_gpu = IntegerHyperSynthesis(h_s.cuda(), "cuda")(symbols, medians)
    assert torch.equal(on_cpu, on_gpu.cpu())


def test_absurd_symbols_are_clipped_not_inexact():
    h_s = _hyper_synthesis(10)
    symbols, medians = _inputs(11)
    symbols[0, 0, 0] = 2**40  # an escaped value a forged file could carry
    output = IntegerHyperSynthesis(h_s)(symbols, medians)
    assert torch.isfinite(output).all() and torch.equal(output, torch.round(output))


def test_large_weights_are_refused():
    h_s = _hyper_synthesis(12)
    with torch.no_grad():
        h_s[0].weight.mul_(1e9)
    with pytest.raises(ValueError, match="too large"):
        IntegerHyperSynthesis(h_s)


def test_table_indices_pick_the_first_level_at_least_as_wide():
    conditional = MeanScaleHyperprior(8, 12).conditional
    levels = conditional.scale_levels.numpy()
    scales = np.array([0.0, 0.05, levels[0], levels[5] - 0.01, levels[5] + 0.01, 1e6])
    units = torch.from_numpy(np.floor(scales * 2.0**ACTIVATION_BITS))
    indices = conditional.table_indices(units, ACTIVATION_BITS)
    assert indices.tolist() == [0, 0, 0, 5, 6, len(levels) - 1]


def _fixed_point_by_torch(h_s: torch.nn.Sequential, symbols: torch.Tensor, medians: torch.Tensor) -> torch.Tensor:
    """The fixed-point recipe of nicbook.nn.integer computed by another convolution algorithm:
    torch's own (transposed) convolutions in float64, on the same integers."""
    limit = 2.0**14 * 2.0**ACTIVATION_BITS
    u = symbols.double() * 2.0**ACTIVATION_BITS + torch.round(medians.double() * 2.0**ACTIVATION_BITS).reshape(-1, 1, 1)
    u = u.unsqueeze(0)
    layers = list(h_s)
    for index, layer in enumerate(layers):
        if isinstance(layer, torch.nn.ReLU):
            continue
        weight = torch.round(layer.weight.detach().double() * 2.0**12)
        bias = torch.round(layer.bias.detach().double() * 2.0 ** (12 + ACTIVATION_BITS))
        if isinstance(layer, torch.nn.ConvTranspose2d):
            u = torch.nn.functional.conv_transpose2d(u, weight, bias, layer.stride, layer.padding, layer.output_padding)
        else:
            u = torch.nn.functional.conv2d(u, weight, bias, layer.stride, layer.padding)
        relu = index + 1 < len(layers) and isinstance(layers[index + 1], torch.nn.ReLU)
        u = torch.floor(u * 2.0**-12 + 0.5).clamp(0.0 if relu else -limit, limit)
    return u[0]


def test_another_convolution_algorithm_gives_the_same_integers():
    """A perturbed floating-point path: the same network computed by torch's convolutions instead of
    the integer network's tap-by-tap products. In float32 the two algorithms round differently (the
    trap: near a table level, such a difference moves a latent to another table, as the float32 vs
    float64 test above shows); in fixed point they agree to the last integer."""
    torch.manual_seed(8)
    model = MeanScaleHyperprior(16, 24).eval()
    symbols, medians = _inputs(9, shape=(24, 24))
    exact = IntegerHyperSynthesis(model.hyper_synthesis)(symbols, medians)
    assert torch.equal(exact, _fixed_point_by_torch(model.hyper_synthesis, symbols, medians))

    x = (symbols.float() + medians.float().reshape(-1, 1, 1)).unsqueeze(0)
    with torch.no_grad():
        by_torch = model.hyper_synthesis.float()(x)[0]
    by_taps = _taps_in_float32(model.hyper_synthesis, x[0])
    assert torch.allclose(by_torch, by_taps, rtol=1e-4, atol=1e-4)  # the same network...
    assert (by_torch != by_taps).sum() > 100  # ...rounded differently by the two algorithms


def _taps_in_float32(h_s: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The float network computed like the integer one (one matrix product per kernel tap), in float32."""
    u = x
    layers = list(h_s)
    for index, layer in enumerate(layers):
        if isinstance(layer, torch.nn.ReLU):
            continue
        weight = layer.weight.detach().float()
        if isinstance(layer, torch.nn.ConvTranspose2d):
            stride, kernel = layer.stride[0], layer.kernel_size[0]
            low = kernel - 1 - layer.padding[0]
            high = low + layer.output_padding[0]
            channels, height, width = u.shape
            spread = u.new_zeros(channels, (height - 1) * stride + 1, (width - 1) * stride + 1)
            spread[:, ::stride, ::stride] = u
            u = torch.nn.functional.pad(spread, (low, high, low, high))
            weight = weight.flip(2, 3).transpose(0, 1)
        else:
            u = torch.nn.functional.pad(u, (layer.padding[0],) * 4)
        out_channels, _, kernel, _ = weight.shape
        rows, columns = u.shape[1] - kernel + 1, u.shape[2] - kernel + 1
        total = layer.bias.detach().float().reshape(-1, 1, 1).expand(out_channels, rows, columns).clone()
        for dy in range(kernel):
            for dx in range(kernel):
                window = u[:, dy : dy + rows, dx : dx + columns].reshape(u.shape[0], -1)
                total += (weight[:, :, dy, dx] @ window).reshape(out_channels, rows, columns)
        relu = index + 1 < len(layers) and isinstance(layers[index + 1], torch.nn.ReLU)
        u = total.clamp_min(0.0) if relu else total
    return u
