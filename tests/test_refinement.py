"""Encoder-side latent refinement: better latents by the model's own measure, ordinary files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicbook import zoo
from nicbook.codec import compress, decode_latents, decompress
from nicbook.data import sample_image, to_tensor
from nicbook.models import FactorizedPrior
from nicbook.refinement import LatentRefinement

QUALITY = 3


def model_loss(model: FactorizedPrior, symbols: np.ndarray, image: np.ndarray, lmbda: float) -> float:
    """``bpp + λ·255²·MSE`` of integer latents, with the decoder's own synthesis and rate estimate."""
    height, width = image.shape[:2]
    decoded = model.synthesize(symbols)[0, :, :height, :width].permute(1, 2, 0).numpy()
    mse = np.mean((decoded * 255.0 - image.astype(np.float64)) ** 2)
    return model.estimated_bits(symbols) / (height * width) + lmbda * mse


@pytest.fixture(scope="module")
def shipped():
    return zoo.load("factorized", QUALITY), zoo.CONFIGURATIONS["factorized"][QUALITY]["lmbda"]


def test_refined_latents_lower_the_loss_and_decode_as_coded(shipped):
    model, lmbda = shipped
    image = sample_image()[40:168, 120:312].copy()
    plain = model.latent_symbols(to_tensor(image))
    refinement = LatentRefinement(lmbda, steps=8)
    refined = refinement.symbols(model, to_tensor(image))
    assert not np.array_equal(plain, refined)
    assert model_loss(model, refined, image, lmbda) < 0.995 * model_loss(model, plain, image, lmbda)
    data = compress(image, model, refinement=refinement)
    _, decoded_symbols, _ = decode_latents(data, model)
    assert np.array_equal(decoded_symbols, refined)


def test_padding_does_not_count_as_distortion():
    torch.manual_seed(0)
    model = FactorizedPrior(8, 12).eval()
    image = sample_image()[:45, :70].copy()
    data = compress(image, model, refinement=LatentRefinement(0.01, steps=3))
    assert decompress(data, model).shape == (45, 70, 3)


def test_zero_steps_is_the_plain_encoder(shipped):
    model, lmbda = shipped
    image = sample_image()[:64, :96].copy()
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
