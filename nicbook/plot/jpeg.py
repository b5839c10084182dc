"""Views of JPEG's intermediate stages for the book: coefficient mosaics, bit maps, animations.

These functions run the real encoder (:mod:`nicbook.jpeg.encoder`) and turn what it computes
into pictures: where the DCT puts the energy of each block, what quantization leaves, how
the zig-zag scan gathers the zeros, and where the bits go.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps

from nicbook.jpeg.color import rgb_to_ycbcr
from nicbook.jpeg.decoder import decode
from nicbook.jpeg.encoder import encode, event_bits, huffman_specs, quantize_image, scan_coefficients, scan_symbols
from nicbook.jpeg.tables import CHROMA_QUANTIZATION, LUMA_QUANTIZATION, scaled_quantization_table
from nicbook.metrics import bpp, psnr
from nicbook.plot import use_style
from nicbook.transforms import blockify, dct2, idct2, unblockify, zigzag_indices

_ZIGZAG = zigzag_indices(8)


def _rgb_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    return image


def keep_coefficients(image: np.ndarray, count: int) -> np.ndarray:
    """The image rebuilt from only the first ``count`` zig-zag DCT coefficients of every 8 × 8 block.

    Each RGB channel is transformed separately, without quantization: this shows how much of
    the picture the low frequencies carry.
    """
    image = _rgb_image(image)
    if not 1 <= count <= 64:
        raise ValueError(f"count must be in 1..64, got {count}")
    mask = np.zeros(64)
    mask[_ZIGZAG[:count]] = 1.0
    channels = []
    for c in range(3):
        blocks = dct2(blockify(image[..., c], 8) - 128.0) * mask.reshape(8, 8)
        channels.append(unblockify(idct2(blocks) + 128.0, image.shape[:2]))
    return np.clip(np.rint(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)


def coefficient_mosaic(blocks: np.ndarray) -> np.ndarray:
    """Lay ``(rows, cols, 64)`` zig-zag ordered coefficients out as an image, each block in place."""
    rows, cols = blocks.shape[:2]
    natural = np.empty_like(blocks)
    natural[..., _ZIGZAG] = blocks
    return unblockify(natural.reshape(rows, cols, 8, 8), (8 * rows, 8 * cols))


def bits_map(image: np.ndarray, quality: int = 75, subsampling: str = "420", optimize: bool = False) -> np.ndarray:
    """Bits per pixel spent on each MCU (16 × 16 pixels in 4:2:0, 8 × 8 in 4:4:4), as an ``(H, W)`` map."""
    quantized = quantize_image(image, quality, subsampling)
    layout = quantized.layout
    coefficients, components = scan_coefficients(quantized)
    symbols = scan_symbols(coefficients, components)
    bits = event_bits(symbols, huffman_specs(symbols, len(layout.factors), optimize))
    blocks_per_mcu = len(components) // (layout.mcus_x * layout.mcus_y)
    per_mcu = np.bincount(symbols.blocks // blocks_per_mcu, weights=bits, minlength=layout.mcus_x * layout.mcus_y)
    mcu_h, mcu_w = 8 * layout.max_v, 8 * layout.max_h
    grid = per_mcu.reshape(layout.mcus_y, layout.mcus_x) / (mcu_h * mcu_w)
    return np.repeat(np.repeat(grid, mcu_h, axis=0), mcu_w, axis=1)[: layout.height, : layout.width]


def _colorize(values: np.ndarray, cmap: str, vmax: float) -> np.ndarray:
    normalized = np.clip(np.asarray(values, dtype=np.float64) / max(vmax, 1e-12), 0, 1)
    return (colormaps[cmap](normalized)[..., :3] * 255).astype(np.uint8)


def _zoom(frame: np.ndarray, zoom: int, grid: bool) -> np.ndarray:
    """Enlarge by pixel replication and optionally draw the 8 × 8 block grid."""
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    frame = np.repeat(np.repeat(frame, zoom, axis=0), zoom, axis=1)
    if grid:
        frame = frame.copy()
        frame[:: 8 * zoom] = frame[:, :: 8 * zoom] = (255, 215, 0)
    return frame


def pipeline_frames(
    image: np.ndarray, quality: int = 50, subsampling: str = "420", zoom: int = 3
) -> tuple[list[np.ndarray], list[str]]:
    """Frames and titles following one (small) image through the encoder and back.

    Original → luma with its 8 × 8 blocks → DCT coefficients → quantized coefficients →
    zig-zag order → bits per MCU → decoded file. Coefficient frames show
    ``log(1 + |c|)`` of each block in place (DC at each block's top left).
    """
    image = _rgb_image(image)
    height, width = image.shape[:2]
    luma = rgb_to_ycbcr(image)[0]
    dct = dct2(blockify(luma, 8) - 128.0)
    rows, cols = dct.shape[:2]
    quantized = quantize_image(image, quality, subsampling).blocks[0][:rows, :cols]
    zigzag_layout = unblockify(quantized.reshape(rows, cols, 8, 8), (8 * rows, 8 * cols))
    data = encode(image, quality, subsampling)
    decoded = decode(data)
    bits = bits_map(image, quality, subsampling)
    coefficient_scale, quantized_scale = np.log1p(1024), np.log1p(64)
    frames = [
        (image, "the image", False),
        (luma.astype(np.uint8), "luma Y, cut into 8×8 blocks", True),
        (
            _colorize(np.log1p(np.abs(unblockify(dct, (8 * rows, 8 * cols)))), "magma", coefficient_scale),
            "DCT of each block: energy in the top-left corner",
            True,
        ),
        (
            _colorize(np.log1p(np.abs(coefficient_mosaic(quantized))), "magma", quantized_scale),
            f"quantized (quality {quality}): {np.mean(quantized == 0):.0%} zeros",
            True,
        ),
        (
            _colorize(np.log1p(np.abs(zigzag_layout)), "magma", quantized_scale),
            "zig-zag order, read row by row: zeros gather at the end",
            True,
        ),
        (_colorize(bits, "viridis", bits.max()), f"bits per pixel of each MCU (mean {bits.mean():.2f})", False),
        (decoded, f"decoded file: {bpp(data, image.shape):.2f} bpp with headers, {psnr(image, decoded):.1f} dB", False),
    ]
    return (
        [_zoom(frame[: 8 * rows, : 8 * cols][:height, :width], zoom, grid) for frame, _, grid in frames],
        [title for _, title, _ in frames],
    )


def plot_quantization_tables(qualities: tuple[int, ...] = (10, 50, 90)) -> plt.Figure:
    """Luma and chroma quantization tables at several qualities, each step size written in its cell."""
    use_style()
    figure, axes = plt.subplots(2, len(qualities), figsize=(3.1 * len(qualities), 6.2), squeeze=False)
    for column, quality in enumerate(qualities):
        for row, (name, base) in enumerate((("luma", LUMA_QUANTIZATION), ("chroma", CHROMA_QUANTIZATION))):
            table = scaled_quantization_table(base, quality)
            ax = axes[row, column]
            ax.imshow(table, cmap="Blues", vmin=0, vmax=255)
            for (y, x), step in np.ndenumerate(table):
                ax.text(x, y, str(step), ha="center", va="center", fontsize=7, color="white" if step > 150 else "black")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(f"{name}, quality {quality}")
    figure.tight_layout()
    return figure
