"""nicbook.nn.tiling: the transforms tile by tile give what the whole image gives."""

from __future__ import annotations

import numpy as np
import torch

from nicbook.nn.tensors import to_image, to_tensor
from nicbook.nn.tiling import MARGIN, analysis_in_tiles, synthesis_in_tiles, tile_spans


def test_tile_cores_cover_an_axis_once_and_margins_stay_inside():
    for size, tile in [(1, 4), (7, 4), (8, 4), (33, 32), (100, 32)]:
        spans = list(tile_spans(size, tile))
        covered = np.concatenate([np.arange(size)[core] for core, _, _ in spans])
        assert np.array_equal(covered, np.arange(size))
        for core, wide, inner in spans:
            assert 0 <= wide.start <= core.start - min(MARGIN, core.start) and wide.stop <= size
            assert np.array_equal(np.arange(size)[wide][inner], np.arange(size)[core])


def test_tiles_give_the_latents_and_pixels_of_the_whole_image(tiny_model, sample):
    # Tiles of 2×2 latent positions (32×32 pixels) on a 96×144 crop: 3×5 tiles, every one an edge
    # or an interior tile, each computed with a margin of MARGIN positions.
    model = tiny_model(seed=3)
    image = sample[100:196, 200:344]
    x = to_tensor(image)
    with torch.no_grad():
        whole = model.analysis(x)
    tiled = analysis_in_tiles(model.analysis, x, tile=2)
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
    assert np.array_equal(model.entropy_model.to_symbols(tiled[0]), model.entropy_model.to_symbols(whole[0]))

    y = torch.round(whole).double()
    synthesis = model.synthesis.double()
    with torch.no_grad():
        expected = to_image(synthesis(y)[..., :90, :140])
    pixels = synthesis_in_tiles(synthesis, y, 90, 140, tile=2)
    assert pixels.shape == (90, 140, 3)
    assert np.abs(pixels.astype(int) - expected).max() <= 1
    assert np.mean(pixels == expected) > 0.999
