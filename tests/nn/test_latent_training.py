"""nicbook.nn.latent_training: a hyperprior's hyper path trained alone on its frozen transforms' latents."""

from __future__ import annotations

import pytest
import torch

from nicbook import codec, data, zoo
from nicbook.errors import DataNotFoundError
from nicbook.nn.checkpoints import CHECKPOINT_NAME, load_checkpoint
from nicbook.nn.config import check_config
from nicbook.nn.latent_training import LatentCrops, hyper_path_rate
from nicbook.nn.models import STRIDE
from nicbook.nn.tensors import to_tensor
from nicbook.nn.training import fit
from nicbook.release import training_record


@pytest.fixture
def base_run(photos, tiny_config, tmp_path):
    """A tiny factorized run whose transforms the hyperpriors below start from."""
    fit(tiny_config(tmp_path / "base", 1), photos, progress=False)
    return tmp_path / "base" / CHECKPOINT_NAME


def hyper_config(tiny_config, out_dir, steps, base_run, **changes):
    options = {"architecture": "hyperprior", "hyper_path_only": True, "patch_size": 64,
               "transforms_from": str(base_run), "quantization": "mixed"}  # fmt: skip
    return tiny_config(out_dir, steps, **{**options, **changes})


def held_out_bits(model, photos) -> float:
    model.eval()
    with torch.no_grad():
        return float(sum(sum(hyper_path_rate(model, y[None].float())) for y in LatentCrops(model, photos, False).latents))


@pytest.mark.parametrize("architecture", ["hyperprior", "mean-scale"])
def test_the_hyper_path_learns_alone_and_prices_the_photos_lower(photos, tiny_config, tmp_path, base_run, architecture):
    start = fit(hyper_config(tiny_config, tmp_path / "start", 1, base_run, lr=0.0, architecture=architecture),
                photos, progress=False)  # fmt: skip
    trained = fit(hyper_config(tiny_config, tmp_path / "hyper", 40, base_run, lr=1e-2, architecture=architecture),
                  photos, progress=False)  # fmt: skip
    before = load_checkpoint(tmp_path / "start" / CHECKPOINT_NAME)["model"]
    after = load_checkpoint(tmp_path / "hyper" / CHECKPOINT_NAME)["model"]
    moved = {name for name in after if not torch.equal(after[name], before[name])}
    assert moved and all(name.startswith("hyper_") for name in moved), sorted(moved)
    assert held_out_bits(trained, photos) < 0.8 * held_out_bits(start, photos)
    log = (tmp_path / "hyper" / "log.jsonl").read_text()
    assert '"split": "validation"' in log and '"side_bpp"' in log


def test_a_resumed_hyper_path_run_ends_with_the_weights_of_an_uninterrupted_one(photos, tiny_config, tmp_path, base_run):
    straight = fit(hyper_config(tiny_config, tmp_path / "straight", 4, base_run), photos, progress=False)
    fit(hyper_config(tiny_config, tmp_path / "resumed", 2, base_run), photos, progress=False)
    resumed = fit(hyper_config(tiny_config, tmp_path / "resumed", 4, base_run), photos, progress=False)
    theirs = dict(resumed.named_parameters())
    for name, value in straight.named_parameters():
        assert torch.equal(value, theirs[name]), name


def test_the_recipe_line_says_the_hyper_path_trained_alone(photos, tiny_config, tmp_path, base_run):
    fit(hyper_config(tiny_config, tmp_path / "hyper", 2, base_run), photos, progress=False)
    recipe = training_record(tmp_path / "hyper")["recipe"]
    assert len(recipe) == 2 and "hyper path alone" in recipe[1] and "transforms from base" in recipe[1]


def test_latent_crops_drop_the_ragged_edge_and_crop_inside_the_photos(photos):
    model = zoo.load("hyperprior", 4)
    crops = LatentCrops(model, photos, progress=False)
    assert [tuple(y.shape) for y in crops.latents] == [(model.M, 72 // STRIDE, 88 // STRIDE)] * len(photos)
    torch.manual_seed(0)
    batch = crops.crops(3, 4)
    assert batch.shape == (3, model.M, 4, 4) and batch.dtype == torch.float32
    with pytest.raises(DataNotFoundError, match="no photo has 8 × 8"):
        crops.crops(1, 8)


def test_the_priced_rate_is_what_a_file_costs():
    """In eval mode the objective prices the rounded latents under the Gaussians the decoder uses:
    the payload of a real file is that, less the coder's overhead and the coarser scale tables."""
    model = zoo.load("hyperprior", 4)
    image = data.sample_image()[:208, :272]  # latents 13 × 17: not whole hyper-latents
    y = model.analysis(to_tensor(image))
    payload, _ = codec.hyperprior.encode(model, y)
    with torch.no_grad():
        latent_bits, side_bits = hyper_path_rate(model.eval(), y)
    estimate = float(latent_bits + side_bits) / 8
    assert abs(len(payload) - estimate) < 0.03 * estimate, (len(payload), estimate)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"architecture": "factorized"}, "hyperprior architecture"),
     ({"transforms_from": None}, "init_from or transforms_from"),
     ({"patch_size": 96}, "multiple of 64")],
)  # fmt: skip
def test_a_hyper_path_run_needs_a_hyperprior_trained_transforms_and_whole_hyper_latents(tiny_config, changes, message):
    config = hyper_config(tiny_config, None, 1, "base.pt", **changes)
    with pytest.raises(ValueError, match=message):
        check_config(config)
