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

Pictures of the intermediate stages live in :mod:`nicbook.plot.jpeg`.
"""

from __future__ import annotations

import os

import numpy as np

from nicbook.data import read_input, write_atomically
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
    "scaled_quantization_table",
    "scan_coefficients",
    "scan_symbols",
]


def encode_file(
    image: np.ndarray, path: str | os.PathLike[str], quality: int = 75, subsampling: str = "420", optimize: bool = False
) -> int:
    """Encode ``image`` (see :func:`encode`) into the file ``path``, atomically (a failure leaves an
    existing file as it was); returns the number of bytes written."""
    data = encode(image, quality=quality, subsampling=subsampling, optimize=optimize)
    write_atomically(path, data)
    return len(data)


def decode_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode the baseline JPEG file at ``path`` (a regular file within
    :data:`nicbook.data.MAX_INPUT_BYTES`) to an ``(H, W, 3)`` uint8 RGB image."""
    return decode(read_input(path))
