"""nicbook: the package behind the executable book on neural image compression.

Each module maps to one idea of the book:

=====================  ==========================================================
``nicbook.data``       images, the sample picture, Kodak and the training photos
``nicbook.metrics``    MSE, PSNR, bits per pixel, Bjøntegaard deltas
``nicbook.plot``       image grids, zoomed crops, RD plots, animations
``nicbook.entropy``    information content, Huffman and rANS coders
``nicbook.transforms`` block DCT, zig-zag, the KLT
``nicbook.jpeg``       a baseline JPEG codec
=====================  ==========================================================
"""

from __future__ import annotations

from nicbook.errors import (
    BitstreamError,
    ChecksumError,
    DataNotFoundError,
    ImageFormatError,
    NicbookError,
    UnsupportedFormatError,
)

__version__ = "0.1.0"

__all__ = [
    "BitstreamError",
    "ChecksumError",
    "DataNotFoundError",
    "ImageFormatError",
    "NicbookError",
    "UnsupportedFormatError",
    "__version__",
]
