"""A baseline JPEG codec written with numpy (ITU-T T.81 / JFIF).

:func:`encode` writes real JFIF files that any viewer opens; :func:`decode` reads baseline
files from any encoder. The stages live in submodules so that the book can show each one:

- :mod:`~nicbook.jpeg.tables`: Annex K quantization and Huffman tables, libjpeg's quality scaling.
- :mod:`~nicbook.jpeg.color`: YCbCr conversion, chroma down- and upsampling (libjpeg-exact).
- :mod:`~nicbook.jpeg.layout`: components, MCUs and the order blocks appear in a scan.
- :mod:`~nicbook.jpeg.islow`: libjpeg's integer DCT and inverse DCT.
- :mod:`~nicbook.jpeg.encoder`: quantization, run-length symbols, Huffman coding.
- :mod:`~nicbook.jpeg.decoder`: marker parsing, table-driven Huffman decoding, IDCT.
- :mod:`~nicbook.jpeg.markers`: marker codes and segment framing.
- :mod:`~nicbook.jpeg.explain`: pictures of the intermediate stages, for the book.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nicbook.jpeg.decoder import decode
from nicbook.jpeg.encoder import (
    SUBSAMPLINGS,
    EncodedSymbols,
    QuantizedImage,
    encode,
    event_bits,
    huffman_specs,
    magnitude_category,
    optimal_huffman_spec,
    quantize_image,
    scan_coefficients,
    scan_symbols,
)
from nicbook.jpeg.tables import (
    CHROMA_QUANTIZATION,
    LUMA_QUANTIZATION,
    HuffmanSpec,
    quality_scale,
    scaled_quantization_table,
)

__all__ = [
    "CHROMA_QUANTIZATION",
    "LUMA_QUANTIZATION",
    "SUBSAMPLINGS",
    "EncodedSymbols",
    "HuffmanSpec",
    "QuantizedImage",
    "decode",
    "decode_file",
    "encode",
    "encode_file",
    "event_bits",
    "huffman_specs",
    "magnitude_category",
    "optimal_huffman_spec",
    "quality_scale",
    "quantize_image",
    "register_cli",
    "scaled_quantization_table",
    "scan_coefficients",
    "scan_symbols",
]


def encode_file(
    image: np.ndarray, path: str | os.PathLike[str], quality: int = 75, subsampling: str = "420", optimize: bool = False
) -> int:
    """Encode ``image`` (see :func:`encode`) into the file ``path``; returns the number of bytes written."""
    data = encode(image, quality=quality, subsampling=subsampling, optimize=optimize)
    Path(path).write_bytes(data)
    return len(data)


def decode_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode the baseline JPEG file at ``path`` to an ``(H, W, 3)`` uint8 RGB image."""
    return decode(Path(path).read_bytes())


def register_cli(subparsers) -> None:
    """Add ``nicbook jpeg encode`` and ``nicbook jpeg decode``."""
    parser = subparsers.add_parser("jpeg", help="encode or decode baseline JPEG files with nicbook's codec")
    commands = parser.add_subparsers(dest="jpeg_command", metavar="ACTION", required=True)
    encoder = commands.add_parser("encode", help="compress an image (PNG, JPEG, ...) to a JPEG file")
    encoder.add_argument("input", help="image file to compress")
    encoder.add_argument("output", help="JPEG file to write")
    encoder.add_argument("--quality", type=int, default=75, help="1..100, libjpeg's scale (default 75)")
    encoder.add_argument("--subsampling", choices=sorted(SUBSAMPLINGS), default="420", help="chroma sampling")
    encoder.add_argument("--optimize", action="store_true", help="Huffman tables built for this image")
    encoder.set_defaults(func=_cli_encode)
    decoder = commands.add_parser("decode", help="decode a baseline JPEG file to a lossless image (PNG)")
    decoder.add_argument("input", help="JPEG file to read")
    decoder.add_argument("output", help="image file to write, format from its suffix (PNG recommended)")
    decoder.set_defaults(func=_cli_decode)


def _cli_encode(args) -> int:
    from nicbook.data import load_image
    from nicbook.metrics import bpp

    image = load_image(args.input)
    size = encode_file(image, args.output, args.quality, args.subsampling, args.optimize)
    print(f"{args.output}: {size} bytes, {bpp(size * 8, image.shape):.3f} bpp")
    return 0


def _cli_decode(args) -> int:
    from nicbook.data import save_image

    image = decode_file(args.input)
    save_image(image, args.output)
    print(f"{args.output}: {image.shape[1]}×{image.shape[0]} pixels")
    return 0
