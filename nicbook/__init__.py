"""nicbook: the package behind the executable book on neural image compression.

Each module maps to one idea of the book:

==========================  =====================================================
``nicbook.data``            images, the sample picture, Kodak and training photos
``nicbook.metrics``         MSE, PSNR, bits per pixel, Bjøntegaard deltas
``nicbook.plot``            image grids, zoomed crops, RD plots, animations
``nicbook.pillow_codecs``   Pillow's JPEG, WebP, JPEG 2000 and AVIF for reference
``nicbook.entropy``         information content, Huffman and rANS coders
``nicbook.transforms``      block DCT, zig-zag, the KLT
``nicbook.jpeg``            a baseline JPEG codec
``nicbook.quantizers``      the dead-zone uniform scalar quantizer
``nicbook.blockcoder``      a block transform coder with a DCT or KLT basis
``nicbook.layers``          GDN and the convolutional analysis/synthesis transforms
``nicbook.quantization``    rounding and its training proxies
``nicbook.entropy_models``  the learned factorized density of the latents
``nicbook.models``          the autoencoder and the compressive autoencoder
``nicbook.train``           the training loop (CPU, GPU, several GPUs)
``nicbook.codec``           ``.nic`` files: compress and decompress with a model
``nicbook.zoo``             trained models shipped with the package
``nicbook.neural_figures``  short training runs and figures for chapters 6 and 7
``nicbook.exercises``       automatic checks of the book's exercises
==========================  =====================================================
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
