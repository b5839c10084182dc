"""nicbook.codec.refinement: better latents by the model's own measure, ordinary files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicbook import zoo
from nicbook.codec import LatentRefinement, compress, decode_latents, pad_to_stride
from nicbook.nn.models import FactorizedPrior
from nicbook.nn.tensors import to_tensor

QUALITY = 3


def crop_loss(model: FactorizedPrior, latents: torch.Tensor, image: np.ndarray, lmbda: float) -> float:
    """``bpp + λ·MSE`` (MSE on 0–255) of latents ``(1, M, h, w)`` on the grid of the entropy model,
    counting only the pixels of ``image`` (the top-left corner of the decoded picture)."""
    height, width = image.shape[:2]
    with torch.no_grad():
        bits = float(-torch.log2(model.entropy_model.likelihood(latents)).sum())
        decoded = model.synthesis(latents)[0, :, :height, :width].permute(1, 2, 0).double().numpy()
    mse = np.mean((decoded * 255.0 - image.astype(np.float64)) ** 2)
    return bits / (height * width) + lmbda * mse


def analysed(model: FactorizedPrior, padded: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The padded image as a tensor, and its latents from the analysis transform."""
    x = to_tensor(padded)
    with torch.no_grad():
        return x, model.analysis(x)


def on_grid(model: FactorizedPrior, latents: torch.Tensor) -> torch.Tensor:
    """Plain rounding: the latents the encoder codes without refinement."""
    return model.entropy_model.from_symbols(model.entropy_model.to_symbols(latents[0])).unsqueeze(0)


@pytest.fixture(scope="module")
def shipped():
    return zoo.load("factorized", QUALITY), zoo.configuration("factorized", QUALITY)["lmbda"]


def test_refined_latents_lower_the_loss_and_decode_as_coded(shipped, sample):
    model, lmbda = shipped
    image = np.ascontiguousarray(sample[40:168, 120:312])
    x, y = analysed(model, image)
    refinement = LatentRefinement(lmbda, steps=8)
    refined = refinement.refine(model, x, y)
    plain = on_grid(model, y)
    torch.testing.assert_close(on_grid(model, refined), refined, rtol=0, atol=1e-4)  # on the grid already
    assert not torch.equal(plain, refined)
    # 8 steps gain about 0.4 % on this crop of kodim23 (clean pixels leave less to win than a JPEG's).
    assert crop_loss(model, refined, image, lmbda) < 0.998 * crop_loss(model, plain, image, lmbda)
    _, decoded_symbols, _ = decode_latents(compress(image, model, refinement=refinement), model)
    assert np.array_equal(decoded_symbols, model.entropy_model.to_symbols(refined[0]))


def test_padding_does_not_count_as_distortion(tiny_model, sample):
    """With the image's size given, what lies in the padding cannot change the refined latents, and
    they are at least as good as plain rounding by a loss computed on the image's pixels alone;
    counting the padding (no size) makes the result depend on it."""
    model = tiny_model()
    image = np.ascontiguousarray(sample[200:245, 200:270])  # 45×70: padded to 48×80
    padded = pad_to_stride(image)
    garbage = padded.copy()
    garbage[45:] = 255 - garbage[45:]
    garbage[:, 70:] = 0
    x, y = analysed(model, padded)
    x_garbage = to_tensor(garbage)
    refinement = LatentRefinement(0.01, steps=4, learning_rate=0.05)
    refined = refinement.refine(model, x, y, size=(45, 70))
    assert torch.equal(refinement.refine(model, x_garbage, y, size=(45, 70)), refined)
    assert crop_loss(model, refined, image, 0.01) <= crop_loss(model, on_grid(model, y), image, 0.01)
    assert not torch.equal(refinement.refine(model, x, y), refinement.refine(model, x_garbage, y))


def test_zero_steps_is_the_plain_encoder(shipped, sample):
    model, lmbda = shipped
    image = sample[:64, :96].copy()
    assert compress(image, model, refinement=LatentRefinement(lmbda, steps=0)) == compress(image, model)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"lmbda": 0.0}, "lmbda"),
        ({"lmbda": 0.01, "steps": -1}, "steps"),
        ({"lmbda": 0.01, "steps": 2.5}, "steps"),
        ({"lmbda": 0.01, "learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        LatentRefinement(**settings)
