"""The codecs people use today, through Pillow: the reference points of every RD plot in the book.

Each :class:`PillowCodec` encodes an ``H×W×3 uint8`` image at one *setting* (a quality, or for
JPEG 2000 a compression ratio) into the real file bytes and decodes them back, so rates are
always measured from file sizes (:func:`nicbook.evaluation.rd_curve` sweeps the settings).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, features

from nicbook.data import as_rgb8, pil_to_rgb8
from nicbook.errors import NicbookError


@dataclass(frozen=True)
class PillowCodec:
    """A Pillow image format with the save options that one setting maps to."""

    name: str
    pillow_format: str
    feature: str
    settings: tuple[float, ...]
    options: Callable[[float], dict]

    def available(self) -> bool:
        """Whether this Pillow build can write the format."""
        return bool(features.check(self.feature))

    def encode(self, image: np.ndarray, setting: float) -> bytes:
        """The bytes of a file holding ``image`` coded at ``setting``."""
        if not self.available():
            raise NicbookError(f"this Pillow build cannot write {self.name} ({self.feature} missing)")
        buffer = io.BytesIO()
        Image.fromarray(as_rgb8(image)).save(buffer, self.pillow_format, **self.options(setting))
        return buffer.getvalue()

    @staticmethod
    def decode(data: bytes) -> np.ndarray:
        """Decode a file's bytes with Pillow into ``H×W×3 uint8``."""
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            return pil_to_rgb8(picture)


CODECS: Mapping[str, PillowCodec] = {
    codec.name: codec
    for codec in (
        PillowCodec(
            "JPEG",
            "JPEG",
            "jpg",
            (5, 10, 20, 30, 50, 75, 90, 95),
            lambda q: {"quality": int(q), "subsampling": 2, "optimize": False},
        ),
        PillowCodec("WebP", "WEBP", "webp", (0, 10, 25, 50, 75, 90, 100), lambda q: {"quality": int(q)}),
        PillowCodec(
            "JPEG 2000",
            "JPEG2000",
            "jpg_2000",
            (192, 96, 48, 24, 12, 6),
            # mct=1 applies the colour transform; without it colour is coded as three RGB planes.
            lambda ratio: {
                "quality_mode": "rates",
                "quality_layers": [float(ratio)],
                "irreversible": True,
                "mct": 1,
            },
        ),
        PillowCodec("AVIF", "AVIF", "avif", (10, 25, 40, 55, 70, 85), lambda q: {"quality": int(q)}),
    )
}
"""Pillow's lossy codecs. Settings: JPEG (4:2:0) and WebP and AVIF qualities; JPEG 2000 (OpenJPEG,
irreversible 9/7 wavelet with the colour transform) compression ratios relative to 24 bpp."""


def available_codecs() -> list[str]:
    """Names of the codecs in :data:`CODECS` that this Pillow build can write."""
    return [name for name, codec in CODECS.items() if codec.available()]


def png_bytes(image: np.ndarray) -> bytes:
    """A lossless PNG file of ``image`` (zlib level 9, Pillow's adaptive row filters)."""
    buffer = io.BytesIO()
    Image.fromarray(as_rgb8(image)).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def zlib_bytes(image: np.ndarray) -> bytes:
    """The raw RGB bytes compressed with zlib (level 9): a general-purpose lossless coder."""
    return zlib.compress(as_rgb8(image).tobytes(), 9)
