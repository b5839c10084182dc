"""nicbook.nn.ops: the lower bound with a gradient, non-negative parameters, precision and devices."""

from __future__ import annotations

import pytest
import torch

from nicbook.nn.ops import NonNegative, coding_device, lower_bound, resolve_device, run_in_precision


def test_nonnegative_round_trips_values():
    reparam = NonNegative(minimum=0.5)
    values = torch.tensor([0.5, 1.0, 7.0])
    torch.testing.assert_close(reparam(reparam.initial(values)), values)


def test_nonnegative_never_goes_below_its_minimum():
    reparam = NonNegative(minimum=0.25)
    assert torch.all(reparam(torch.tensor([-3.0, 0.0, 0.1])) >= 0.25)


@pytest.mark.parametrize(
    ("start", "grad_sign", "expected"), [(0.0, -1.0, -1.0), (0.0, 1.0, 0.0), (2.0, 1.0, 1.0)]
)
def test_lower_bound_gradient_lets_parameters_climb_back(start, grad_sign, expected):
    x = torch.tensor(start, requires_grad=True)
    out = lower_bound(x, 1.0)
    assert float(out.detach()) == max(start, 1.0)
    (out * grad_sign).backward()
    assert float(x.grad) == expected


def test_run_in_precision_casts_weights_and_input_but_leaves_the_module_alone():
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    out = run_in_precision(layer, x, torch.float64)
    assert out.dtype == torch.float64 and layer.weight.dtype == torch.float32
    torch.testing.assert_close(out.float(), layer(x), rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the same numbers as a float64 copy of the layer, computed by hand
        expected = torch.nn.functional.conv2d(x.double(), layer.weight.double(), layer.bias.double())
    torch.testing.assert_close(out, expected)


def test_devices():
    assert coding_device(torch.device("cpu")).type == "cpu"
    assert coding_device(torch.device("mps")).type == "cpu"  # no float64 on Apple's GPUs
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("toaster")
