"""Images as tensors: the layout the networks take, and random training patches of photos.

Networks take float tensors ``(B, 3, H, W)`` in [0, 1]; everything else in nicbook works on
``H×W×3 uint8`` arrays (:mod:`nicbook.data`). :class:`PatchDataset` draws the training batches.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from nicbook.data import as_rgb8, load_image
from nicbook.errors import DataNotFoundError

__all__ = ["PatchDataset", "to_image", "to_tensor"]


def to_tensor(
    image: np.ndarray, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``(H, W, 3)`` uint8 image -> ``(1, 3, H, W)`` tensor in [0, 1], the layout networks expect."""
    tensor = torch.from_numpy(np.array(as_rgb8(image), copy=True)).permute(2, 0, 1).unsqueeze(0)
    return tensor.to(device, dtype) / 255.0


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` or ``(3, H, W)`` tensor in [0, 1] -> ``(H, W, 3)`` uint8 image.

    Values are clamped to [0, 1] and rounded in the tensor's own precision (a float64 decoder
    output is not cast to float32 first, which could move a value across a rounding boundary).
    """
    tensor = tensor.detach().cpu().reshape(-1, *tensor.shape[-2:])
    return (tensor.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


class PatchDataset(Dataset):
    """Random square crops of training photos, with random horizontal and vertical flips.

    Each item is a float32 tensor ``(3, patch_size, patch_size)`` in [0, 1]. An epoch has
    ``patches_per_image`` crops of every image; images smaller than a patch are padded by
    reflection. Decoded images are kept in memory (about 0.4 GB for the book's 580 photos) unless
    ``cache=False``. Randomness comes from torch's generator, so ``torch.manual_seed`` (and the
    DataLoader's per-worker seeding) makes the crops reproducible.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        patch_size: int = 128,
        patches_per_image: int = 1,
        cache: bool = True,
    ) -> None:
        if not paths:
            raise DataNotFoundError("PatchDataset needs at least one image path")
        if patch_size < 1 or patches_per_image < 1:
            raise ValueError("patch_size and patches_per_image must be positive")
        self.paths = [Path(path) for path in paths]
        self.patch_size = patch_size
        self.patches_per_image = patches_per_image
        self.cache = cache
        self._images: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.paths) * self.patches_per_image

    def _image(self, index: int) -> np.ndarray:
        image = self._images.get(index)
        if image is None:
            image = load_image(self.paths[index])
            if self.cache:
                self._images[index] = image
        return image

    def __getitem__(self, item: int) -> torch.Tensor:
        image = self._image(item % len(self.paths))
        size = self.patch_size
        pad_y, pad_x = max(0, size - image.shape[0]), max(0, size - image.shape[1])
        if pad_y or pad_x:
            mode = "reflect" if min(image.shape[:2]) > 1 else "edge"
            image = np.pad(image, ((0, pad_y), (0, pad_x), (0, 0)), mode=mode)
        top = int(torch.randint(0, image.shape[0] - size + 1, ()))
        left = int(torch.randint(0, image.shape[1] - size + 1, ()))
        patch = image[top : top + size, left : left + size]
        if torch.rand(()) < 0.5:
            patch = patch[:, ::-1]
        if torch.rand(()) < 0.5:
            patch = patch[::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1)
        return tensor.float().div_(255.0)
