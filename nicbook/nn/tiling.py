"""The analysis and synthesis transforms run tile by tile, so that their memory is bounded by a
tile, not by the photo.

A latent depends only on pixels within about two latent positions (32 pixels) of its own, and a
pixel only on latents within two positions of it. Each tile is therefore computed with
:data:`MARGIN` extra positions on every side, and only its core is kept: the core is what the
whole image would give, up to floating-point rounding (a convolution may group its sums
differently for another input size). An image of at most :data:`TILE` × :data:`TILE` latent
positions is one tile, computed exactly as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from nicbook.nn.models import STRIDE
from nicbook.nn.tensors import to_image

#: Latent positions per tile side (768 pixels: a Kodak photo is one tile), and the overlap on each
#: side (64 pixels).
TILE = 48
MARGIN = 4


def tile_side(dtype: torch.dtype) -> int:
    """Latent positions per tile side for values of ``dtype``: :data:`TILE` up to 4-byte floats,
    fewer for wider ones (33 for float64), so that a tile takes about the same memory."""
    itemsize = torch.finfo(dtype).bits // 8
    return TILE if itemsize <= 4 else int(TILE * (4 / itemsize) ** 0.5)


def tile_spans(size: int, tile: int = TILE, margin: int = MARGIN) -> Iterator[tuple[slice, slice, slice]]:
    """Along an axis of ``size`` latent positions, per tile: its core, the core widened by
    ``margin`` (clipped to the axis) and where the core lies inside the widened span."""
    for start in range(0, size, tile):
        stop = min(start + tile, size)
        low, high = max(start - margin, 0), min(stop + margin, size)
        yield slice(start, stop), slice(low, high), slice(start - low, stop - low)


def latent_tiles(
    height: int, width: int, tile: int = TILE
) -> Iterator[tuple[tuple[slice, slice], tuple[slice, slice], tuple[slice, slice]]]:
    """Over ``height`` × ``width`` latent positions, per tile: its core, widened core and the core inside
    the widened one, each as ``(rows, columns)`` (:func:`tile_spans` along each axis)."""
    for rows in tile_spans(height, tile):
        for cols in tile_spans(width, tile):
            yield (rows[0], cols[0]), (rows[1], cols[1]), (rows[2], cols[2])


def pixel_span(span: slice) -> slice:
    """The pixels of a span of latent positions."""
    return slice(span.start * STRIDE, span.stop * STRIDE)


@torch.no_grad()
def analysis_in_tiles(analysis: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int = TILE) -> torch.Tensor:
    """``analysis(x)`` for ``x`` of shape ``(1, 3, H, W)``, ``H`` and ``W`` multiples of the stride."""
    height, width = x.shape[-2] // STRIDE, x.shape[-1] // STRIDE
    y = None
    for core, wide, inner in latent_tiles(height, width, tile):
        part = analysis(x[..., pixel_span(wide[0]), pixel_span(wide[1])])[..., inner[0], inner[1]]
        if y is None:
            y = part.new_empty((*part.shape[:2], height, width))
        y[..., core[0], core[1]] = part
    return y


@torch.no_grad()
def synthesis_in_tiles(
    synthesis: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, height: int, width: int, tile: int = TILE
) -> np.ndarray:
    """The ``(height, width, 3)`` uint8 image of ``synthesis(y)`` for latents ``(1, M, h, w)``,
    clamped to ``[0, 1]`` and cropped: each tile is converted to pixels as soon as it is made."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    for core, wide, inner in latent_tiles(y.shape[-2], y.shape[-1], tile):
        rows, cols = pixel_span(core[0]), pixel_span(core[1])
        if rows.start >= height or cols.start >= width:
            continue
        x = synthesis(y[..., wide[0], wide[1]])[0, :, pixel_span(inner[0]), pixel_span(inner[1])]
        rows, cols = slice(rows.start, min(rows.stop, height)), slice(cols.start, min(cols.stop, width))
        image[rows, cols] = to_image(x[:, : rows.stop - rows.start, : cols.stop - cols.start])
    return image
