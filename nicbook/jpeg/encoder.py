"""Baseline sequential JPEG encoder (ITU-T T.81), vectorised with numpy.

Every stage works on all blocks of the image at once: colour conversion and chroma
downsampling (:mod:`nicbook.jpeg.color`), the 8 × 8 DCT (:mod:`nicbook.jpeg.islow`) and
quantization, zig-zag scan, DC prediction, the run-length symbols of the AC coefficients,
Huffman coding and bit packing. Wherever the standard leaves a choice (rounding, plane
padding, the "dummy" blocks that complete partial MCUs, segment order) we follow libjpeg, so
at equal settings our files are byte for byte those of libjpeg (and Pillow).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from nicbook.entropy import huffman_code_lengths, pack_bits
from nicbook.errors import ImageFormatError
from nicbook.jpeg import markers
from nicbook.jpeg.color import downsample_h2v2, pad_edges, rgb_to_ycbcr
from nicbook.jpeg.islow import fdct_islow
from nicbook.jpeg.layout import FrameLayout, scan_block_order
from nicbook.jpeg.tables import (
    AC_CHROMA,
    AC_LUMA,
    CHROMA_QUANTIZATION,
    DC_CHROMA,
    DC_LUMA,
    LUMA_QUANTIZATION,
    HuffmanSpec,
    scaled_quantization_table,
)
from nicbook.transforms import blockify, zigzag_indices

#: Chroma sampling: name -> (horizontal, vertical) factors of the luma component.
SUBSAMPLINGS = {"444": (1, 1), "420": (2, 2)}
_ZIGZAG = zigzag_indices(8)
_EOB, _ZRL = 0x00, 0xF0


@dataclass
class EncodedSymbols:
    """The entropy-coding events of a scan, in bitstream order.

    Event ``i`` belongs to block ``blocks[i]`` (scan order) and is Huffman symbol ``symbols[i]``
    of table ``tables[i]`` (0: DC luma, 1: AC luma, 2: DC chroma, 3: AC chroma) followed by
    ``extra_lengths[i]`` raw bits ``extra_bits[i]``.
    """

    blocks: np.ndarray
    tables: np.ndarray
    symbols: np.ndarray
    extra_bits: np.ndarray
    extra_lengths: np.ndarray


def _validated_pixels(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageFormatError(f"JPEG encodes uint8 images, got dtype {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ImageFormatError(f"expected an (H, W, 3) RGB or (H, W) grey image, got shape {image.shape}")
    if not (1 <= image.shape[0] <= 0xFFFF and 1 <= image.shape[1] <= 0xFFFF):
        raise ImageFormatError(f"JPEG image sides must be 1..65535 pixels, got {image.shape[:2]}")
    return image


def _component_planes(image: np.ndarray, layout: FrameLayout) -> list[np.ndarray]:
    """Sample planes of each component, padded to whole blocks as libjpeg pads them."""
    height, width = layout.height, layout.width
    planes = rgb_to_ycbcr(image) if image.ndim == 3 else image[None].astype(np.int64)
    result = []
    for component, plane in enumerate(planes):
        rows, cols = layout.component_blocks(component)
        h, v = layout.factors[component]
        if (h, v) == (layout.max_h, layout.max_v):
            padded = pad_edges(plane, -(-height // 8) * 8, -(-width // 8) * 8)
        else:  # 2 x 2 box average of the edge-replicated plane (libjpeg h2v2_downsample)
            full = pad_edges(plane, height + height % 2, 16 * layout.mcus_x)
            padded = pad_edges(downsample_h2v2(full), 8 * rows, 8 * cols)
        result.append(padded)
    return result


def _quantized_blocks(plane: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Level shift, libjpeg's integer DCT and rounding division; ``(rows, cols, 64)`` zig-zag order.

    The DCT output is 8 times the orthonormal one, so each coefficient is divided by
    ``8 * step``, rounding halves away from zero, exactly as libjpeg quantizes. For 8-bit
    samples the results fit baseline's ranges (|AC| < 1024, DC differences < 2048) even at
    step 1.
    """
    coefficients = fdct_islow(blockify(plane, 8) - 128)
    coefficients = coefficients.reshape(*coefficients.shape[:2], 64)[..., _ZIGZAG]
    divisors = 8 * table.ravel()[_ZIGZAG]
    return np.sign(coefficients) * ((np.abs(coefficients) + divisors // 2) // divisors)


def _extend_to_mcus(blocks: np.ndarray, rows: int, cols: int, h: int) -> np.ndarray:
    """Complete partial MCUs with libjpeg's dummy blocks: zero AC, DC copied from the block before."""
    real_rows, real_cols = blocks.shape[:2]
    out = np.zeros((rows, cols, 64), dtype=np.int64)
    out[:real_rows, :real_cols] = blocks
    out[:real_rows, real_cols:, 0] = blocks[:, -1:, 0]
    for row in range(real_rows, rows):  # a dummy row copies the last DC of the MCU row above
        out[row, :, 0] = np.repeat(out[row - 1, h - 1 :: h, 0], h)
    return out


@dataclass
class QuantizedImage:
    """An image after the lossy stages: quantized zig-zag coefficients of every component.

    ``blocks[c]`` is ``(rows, cols, 64)`` over whole MCUs; ``tables[c]`` the 8 × 8 quantization
    table (natural order) of component ``c``.
    """

    layout: FrameLayout
    blocks: list[np.ndarray]
    tables: list[np.ndarray]


def quantize_image(image: np.ndarray, quality: int = 75, subsampling: str = "420") -> QuantizedImage:
    """Colour conversion, chroma subsampling, DCT and quantization of an RGB or grey uint8 image."""
    pixels = _validated_pixels(image)
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"subsampling must be one of {sorted(SUBSAMPLINGS)}, got {subsampling!r}")
    luma_table = scaled_quantization_table(LUMA_QUANTIZATION, quality)
    chroma_table = scaled_quantization_table(CHROMA_QUANTIZATION, quality)
    factors = ((1, 1),) if pixels.ndim == 2 else (SUBSAMPLINGS[subsampling], (1, 1), (1, 1))
    layout = FrameLayout(pixels.shape[0], pixels.shape[1], factors)
    tables = [luma_table] + [chroma_table] * (len(factors) - 1)
    blocks = [
        _extend_to_mcus(_quantized_blocks(plane, table), *layout.mcu_blocks(c), layout.factors[c][0])
        for c, (plane, table) in enumerate(zip(_component_planes(pixels, layout), tables, strict=True))
    ]
    return QuantizedImage(layout, blocks, tables)


def scan_coefficients(quantized: QuantizedImage) -> tuple[np.ndarray, np.ndarray]:
    """``(coefficients (N, 64), component of each block)`` of the image's single scan, in bitstream order."""
    layout = quantized.layout
    components, rows, cols = scan_block_order(layout, list(range(len(layout.factors))))
    coefficients = np.empty((len(components), 64), dtype=np.int64)
    for c, blocks in enumerate(quantized.blocks):
        mask = components == c
        coefficients[mask] = blocks[rows[mask], cols[mask]]
    return coefficients, components


def magnitude_category(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """JPEG's ``(size, extra bits)`` of integers: ``size`` bits hold ``v`` (positive) or ``v - 1`` (negative)."""
    values = np.asarray(values, dtype=np.int64)
    sizes = np.frexp(np.abs(values).astype(np.float64))[1].astype(np.int64)
    return sizes, np.where(values < 0, values + (np.int64(1) << sizes) - 1, values)


def scan_symbols(coefficients: np.ndarray, components: np.ndarray) -> EncodedSymbols:
    """Huffman events of a scan: DC differences and AC run/size pairs with ZRL and EOB (T.81 F.1.2).

    ``coefficients`` is ``(N, 64)`` in zig-zag order with the blocks in scan order and
    ``components[i]`` the component of block ``i`` (0 is luma). Events of all blocks are
    built at once and put in bitstream order with one stable sort.
    """
    n_blocks = len(coefficients)
    dc = coefficients[:, 0]
    differences = np.empty_like(dc)
    for component in np.unique(components):
        mask = components == component
        differences[mask] = np.diff(dc[mask], prepend=0)
    dc_size, dc_bits = magnitude_category(differences)

    block, position = np.nonzero(coefficients[:, 1:])
    position += 1
    ac_size, ac_bits = magnitude_category(coefficients[block, position])
    new_block = block[1:] != block[:-1]
    first_in_block = np.concatenate([[True], new_block])[: len(block)]
    last_in_block = np.concatenate([new_block, [True]])[-len(block) :] if len(block) else first_in_block
    previous = np.where(first_in_block, 0, np.roll(position, 1))
    run = position - previous - 1
    last_position = np.zeros(n_blocks, dtype=np.int64)
    last_position[block[last_in_block]] = position[last_in_block]
    eob_blocks = np.flatnonzero(last_position < 63)
    zrl_owner = np.repeat(np.arange(len(block)), run >> 4)

    chroma = (components != 0).astype(np.int64) * 2
    # Sort keys: within block b, the DC comes first, then ZRLs and AC event of each position, EOB last.
    keys = np.concatenate([
        np.arange(n_blocks) * 130,
        block[zrl_owner] * 130 + 2 * position[zrl_owner],
        block * 130 + 2 * position + 1,
        eob_blocks * 130 + 129,
    ])  # fmt: skip
    order = np.argsort(keys, kind="stable")
    zeros_zrl, zeros_eob = np.zeros(len(zrl_owner), np.int64), np.zeros(len(eob_blocks), np.int64)

    def events(*parts: np.ndarray) -> np.ndarray:
        return np.concatenate(parts)[order]

    return EncodedSymbols(
        blocks=events(np.arange(n_blocks), block[zrl_owner], block, eob_blocks),
        tables=events(chroma, chroma[block[zrl_owner]] + 1, chroma[block] + 1, chroma[eob_blocks] + 1),
        symbols=events(dc_size, zeros_zrl + _ZRL, ((run & 15) << 4) | ac_size, zeros_eob + _EOB),
        extra_bits=events(dc_bits, zeros_zrl, ac_bits, zeros_eob),
        extra_lengths=events(dc_size, zeros_zrl, ac_size, zeros_eob),
    )


def optimal_huffman_spec(frequencies: np.ndarray) -> HuffmanSpec:
    """A Huffman table for symbol counts, at most 16 bits, never using the all-ones code (Annex K.2).

    A dummy symbol of count 1 takes part in the construction and is then dropped, which
    leaves the all-ones code of the longest length unused, as JPEG requires.
    """
    lengths = huffman_code_lengths(np.append(np.asarray(frequencies, dtype=np.int64), 1), max_length=16)[:-1]
    used = np.flatnonzero(lengths)
    values = used[np.lexsort((used, lengths[used]))]
    bits = np.bincount(lengths[values], minlength=17)[1:17]
    return HuffmanSpec(tuple(int(b) for b in bits), tuple(int(v) for v in values))


STANDARD_HUFFMAN = (DC_LUMA, AC_LUMA, DC_CHROMA, AC_CHROMA)


def huffman_specs(symbols: EncodedSymbols, n_components: int, optimize: bool = False) -> tuple[HuffmanSpec | None, ...]:
    """The four Huffman tables of a scan (``None`` where unused): Annex K ones, or built for ``symbols``."""
    used_tables = (0, 1) if n_components == 1 else (0, 1, 2, 3)
    if not optimize:
        return tuple(spec if t in used_tables else None for t, spec in enumerate(STANDARD_HUFFMAN))
    counts = np.zeros((4, 256), dtype=np.int64)
    np.add.at(counts, (symbols.tables, symbols.symbols), 1)
    return tuple(optimal_huffman_spec(counts[t]) if t in used_tables else None for t in range(4))


def _code_tables(specs: tuple[HuffmanSpec | None, ...]) -> tuple[np.ndarray, np.ndarray]:
    codes = np.zeros((4, 256), dtype=np.int64)
    lengths = np.zeros((4, 256), dtype=np.int64)
    for table, spec in enumerate(specs):
        if spec is not None:
            codes[table], lengths[table] = spec.encoder_tables()
    return codes, lengths


def event_bits(symbols: EncodedSymbols, specs: tuple[HuffmanSpec | None, ...]) -> np.ndarray:
    """Bits each event costs: its Huffman code plus its extra bits."""
    return _code_tables(specs)[1][symbols.tables, symbols.symbols] + symbols.extra_lengths


def entropy_code(symbols: EncodedSymbols, specs: tuple[HuffmanSpec | None, ...]) -> bytes:
    """Huffman-code the events with ``specs[table]``, pad with ones and byte-stuff (T.81 B.1.1.5)."""
    codes, lengths = _code_tables(specs)
    code_lengths = lengths[symbols.tables, symbols.symbols]
    if np.any(code_lengths == 0):
        raise ValueError("a symbol has no code in the Huffman table")
    values = (codes[symbols.tables, symbols.symbols] << symbols.extra_lengths) | symbols.extra_bits
    data, _ = pack_bits(values, code_lengths + symbols.extra_lengths, pad_with_ones=True)
    return data.replace(b"\xff", b"\xff\x00")


def _headers(quantized: QuantizedImage, specs: tuple[HuffmanSpec | None, ...]) -> bytes:
    layout = quantized.layout
    n_components = len(layout.factors)
    table_ids = [0] + [1] * (n_components - 1)
    parts = [
        b"\xff" + bytes([markers.SOI]),
        markers.segment(markers.APP0, b"JFIF\x00\x01\x01\x00" + struct.pack(">HHBB", 1, 1, 0, 0)),
    ]
    for table_id, table in enumerate(quantized.tables[:2]):
        parts.append(
            markers.segment(markers.DQT, bytes([table_id]) + table.ravel()[_ZIGZAG].astype(np.uint8).tobytes())
        )
    frame = struct.pack(">BHHB", 8, layout.height, layout.width, n_components)
    for c, (h, v) in enumerate(layout.factors):
        frame += bytes([c + 1, (h << 4) | v, table_ids[c]])
    parts.append(markers.segment(markers.SOF_BASELINE, frame))
    for table, spec in enumerate(specs):
        if spec is not None:  # table 0/2 are DC (class 0), 1/3 AC (class 1); ids 0 luma, 1 chroma
            header = bytes([((table & 1) << 4) | (table >> 1)])
            parts.append(markers.segment(markers.DHT, header + bytes(spec.bits) + bytes(spec.values)))
    scan = bytes([n_components]) + b"".join(bytes([c + 1, table_ids[c] * 0x11]) for c in range(n_components))
    parts.append(markers.segment(markers.SOS, scan + bytes([0, 63, 0])))
    return b"".join(parts)


def encode(image: np.ndarray, quality: int = 75, subsampling: str = "420", optimize: bool = False) -> bytes:
    """Encode an ``(H, W, 3)`` RGB or ``(H, W)`` grey uint8 image as a baseline JFIF file.

    ``quality`` (1..100) scales the Annex K quantization tables as libjpeg does;
    ``subsampling`` is ``"420"`` (chroma halved in both directions) or ``"444"``; with
    ``optimize`` the Huffman tables are built for this image instead of the Annex K ones.
    Grey images are coded as one component and ignore ``subsampling``.
    """
    quantized = quantize_image(image, quality, subsampling)
    symbols = scan_symbols(*scan_coefficients(quantized))
    specs = huffman_specs(symbols, len(quantized.layout.factors), optimize)
    return _headers(quantized, specs) + entropy_code(symbols, specs) + b"\xff" + bytes([markers.EOI])
