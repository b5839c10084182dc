"""nicbook.nn.tensors: images as tensors, and random training patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nicbook.errors import DataNotFoundError
from nicbook.nn.tensors import PatchDataset, to_image, to_tensor


def test_tensor_round_trip_is_exact():
    image = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    tensor = to_tensor(image)
    assert tensor.shape == (1, 3, 32, 48) and tensor.dtype == torch.float32
    assert float(tensor[0, 1, 2, 3]) == pytest.approx(image[2, 3, 1] / 255)
    np.testing.assert_array_equal(to_image(tensor), image)
    np.testing.assert_array_equal(to_image(tensor[0].double()), image)


def test_to_image_clamps_out_of_range_values():
    tensor = torch.tensor([-0.5, 0.5, 1.5]).reshape(1, 3, 1, 1)
    np.testing.assert_array_equal(to_image(tensor).ravel(), [0, 128, 255])


def test_patch_dataset_crops_and_flips(tmp_path):
    ramp = np.tile(np.arange(40, dtype=np.uint8)[None, :, None], (30, 1, 3))
    small = np.full((5, 7, 3), 9, np.uint8)
    paths = [tmp_path / "ramp.png", tmp_path / "s.png"]
    Image.fromarray(ramp).save(paths[0])
    Image.fromarray(small).save(paths[1])
    dataset = PatchDataset(paths, patch_size=16, patches_per_image=3)
    assert len(dataset) == 6
    torch.manual_seed(0)
    patches = [dataset[0] for _ in range(20)]
    assert all(p.shape == (3, 16, 16) and p.dtype == torch.float32 for p in patches)
    assert all(0.0 <= float(p.min()) and float(p.max()) <= 1.0 for p in patches)
    directions = {bool(p[0, 0, 1] > p[0, 0, 0]) for p in patches}
    assert directions == {True, False}  # horizontal flips happen, both ways
    assert torch.all(dataset[1] == 9 / 255)  # an image smaller than a patch is padded with itself
    with pytest.raises(DataNotFoundError):
        PatchDataset([])
