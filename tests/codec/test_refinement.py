"""nicbook.codec.refinement: better latents by the model's own measure, ordinary files, for both families."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicbook import cli, zoo
from nicbook.codec import LatentRefinement, compress, decode_latents, decompress, pad_to_stride
from nicbook.codec.hyperprior import estimated_bits
from nicbook.data import load_image, save_image
from nicbook.nn.models import FactorizedPrior
from nicbook.nn.tiling import MARGIN, TILE
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


def test_a_large_image_is_refined_tile_by_tile_and_gains_as_a_whole(tiny_model, sample):
    """Memory bounded by a tile: the synthesis never sees more than a widened tile, yet the search
    lowers the loss of the whole image, measured on all its pixels at once."""
    model = tiny_model()
    image = np.ascontiguousarray(np.concatenate([sample[:64], sample[64:128, :150]], axis=1))  # 64×918
    padded = pad_to_stride(image)
    x, y = analysed(model, padded)
    assert y.shape[-1] > TILE  # two tiles across
    widths = []
    model.synthesis.register_forward_pre_hook(lambda module, inputs: widths.append(inputs[0].shape[-1]))
    refined = LatentRefinement(0.01, steps=4, learning_rate=0.05).refine(model, x, y, size=image.shape[:2])
    assert len(widths) == 2 * 5 and max(widths) <= TILE + 2 * MARGIN  # 5 iterates per tile
    torch.testing.assert_close(on_grid(model, refined), refined, rtol=0, atol=1e-4)
    assert crop_loss(model, refined, image, 0.01) < crop_loss(model, on_grid(model, y), image, 0.01)


def file_loss(data: bytes, model, image: np.ndarray, lmbda: float) -> float:
    """``bpp + λ·MSE`` (MSE on 0–255) of a hyperprior file: the information of the symbols it holds
    under the tables the codec chose (side information included) and the error of its decoding."""
    _, latents, _ = decode_latents(data, model)
    bits = sum(estimated_bits(model, latents))
    mse = np.mean((decompress(data, model).astype(np.float64) - image.astype(np.float64)) ** 2)
    return bits / (image.shape[0] * image.shape[1]) + lmbda * mse


@pytest.mark.parametrize("architecture", ["hyperprior", "mean-scale"])
def test_refined_hyperprior_files_cost_less_and_move_the_side_information(architecture, sample):
    """The search moves latents and hyper-latents; the file holds what it found, and prices lower
    by the codec's own tables and decoder than the plain encoder's file."""
    quality = 4  # the one quality both architectures ship
    model, lmbda = zoo.load(architecture, quality), zoo.configuration(architecture, quality)["lmbda"]
    image = np.ascontiguousarray(sample[40:168, 120:312])
    x, y = analysed(model, image)
    refinement = LatentRefinement(lmbda, steps=8)
    y_hat, z_hat = refinement.refine_hyperprior(model, x, y)
    refined, plain = compress(image, model, refinement=refinement), compress(image, model)
    _, refined_latents, _ = decode_latents(refined, model)
    _, plain_latents, _ = decode_latents(plain, model)
    assert np.array_equal(refined_latents.side_symbols, model.hyper_entropy_model.to_symbols(z_hat[0]))
    # The same latents: exactly for the scale hyperprior (integers), up to the difference between the
    # integer hyper-synthesis's means, which the file uses, and the float ones of the search.
    torch.testing.assert_close(refined_latents.latents(), y_hat[0].double(), rtol=0, atol=0.05)
    assert not np.array_equal(refined_latents.symbols, plain_latents.symbols)
    assert file_loss(refined, model, image, lmbda) < 0.995 * file_loss(plain, model, image, lmbda)


def test_the_command_line_refines_a_hyperprior_with_its_zoo_lambda(tmp_path, sample, capsys):
    """The zoo knows the λ; the refined file is another file of the same model, and decodes."""
    picture, plain, refined, decoded = (tmp_path / name for name in ("in.png", "plain.nic", "refined.nic", "out.png"))
    save_image(sample[:96, :128], picture)
    model = ("--model", "hyperprior", "--quality", "0")
    assert cli.main(["encode", str(picture), str(plain), *model]) == 0
    assert cli.main(["encode", str(picture), str(refined), *model, "--refine", "4"]) == 0
    assert refined.read_bytes() != plain.read_bytes()
    assert cli.main(["decode", str(refined), str(decoded)]) == 0 and load_image(decoded).shape == (96, 128, 3)
    capsys.readouterr()


@pytest.mark.parametrize("architecture", ["factorized", "hyperprior"])
def test_zero_steps_is_the_plain_encoder(architecture, sample):
    model, lmbda = zoo.load(architecture, QUALITY + 1), zoo.configuration(architecture, QUALITY + 1)["lmbda"]
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
