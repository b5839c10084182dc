"""nicbook: the package behind the executable book on neural image compression.

Each module holds one idea of the book, in the order an image meets them:

==============================  ===========================================================
``nicbook.data``                images as 8-bit RGB, the sample picture, Kodak, training photos
``nicbook.metrics``             MSE, PSNR, bits per pixel, Bjøntegaard deltas
``nicbook.evaluation``          RD points and curves measured on real files
``nicbook.pillow_codecs``       Pillow's JPEG, WebP, JPEG 2000 and AVIF for reference
``nicbook.entropy``             information content, frequency tables, Huffman and rANS coders
``nicbook.deadzone``            the dead-zone uniform scalar quantizer
``nicbook.transforms``          block DCT, zig-zag, the KLT
``nicbook.jpeg``                a baseline JPEG codec, one stage per module
``nicbook.blockcoder``          a block transform coder with a DCT or KLT basis
``nicbook.nn``                  the neural parts, in PyTorch: layers, rounding, the learned
                                density, the models, checkpoints, the training loop
``nicbook.codec``               ``.nic`` files: analysis, symbols, entropy coding, container
``nicbook.zoo``                 loading the trained models shipped with the package
``nicbook.release``             turning a training run into shipped weights, and back
``nicbook.plot``                image grids, RD plots, animations and each chapter's figures
``nicbook.exercises``           automatic checks of the book's exercises, and grading
``nicbook.cli``                 the ``nicbook`` command line
``nicbook.errors``              the exceptions nicbook raises for bad input
==============================  ===========================================================

``data``, ``metrics``, ``entropy``, ``deadzone``, ``transforms``, ``jpeg`` and ``blockcoder``
need numpy and Pillow only; torch is loaded by ``nn``, ``codec``, ``zoo`` and ``release``, and
matplotlib by ``plot``.
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
