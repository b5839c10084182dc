"""The ``.nic`` container: header, versions, CRC and the fingerprint of the model's weights.

Layout (integers big-endian)::

    magic "\\x89NIC" | version u8 | name length u8 | model name (ASCII)
    | weights hash (8 bytes) | height u32 | width u32 | channels u16 | latent height u16
    | latent width u16 | payload length u32 | payload | CRC-32 of everything before, u32

The payload of version 8 (written by default) is the per-image scales and the latents coded with
the matching stretched tables, idle latents left out (:mod:`nicbook.codec.adaptive`); that of
version 5 is the latents coded with the model's own tables (:mod:`nicbook.codec.latents`); that of
version 7 is a hyperprior's side information and latents (:mod:`nicbook.codec.hyperprior`).
Version 6 held per-image scales with the idle latents coded too; versions 3, 1 and 4 hold the
payloads of 6, 5 and 7 coded with the rANS coder's earlier stream format
(:mod:`nicbook.entropy.rans`); version 2, the per-image scales of an earlier release (32×32-pixel
blocks only, no channel gains), is still read too (:data:`PAYLOADS`).

The weights hash (:func:`weights_hash`) covers the weights and the coding tables, so decoding with
any other model is refused instead of producing garbage.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from torch import nn

from nicbook.errors import BitstreamError, NicbookError, UnsupportedFormatError
from nicbook.nn.models import STRIDE

__all__ = [
    "FORMAT_VERSION",
    "HYPERPRIOR_VERSION",
    "MAGIC",
    "MAX_PIXELS",
    "PAYLOADS",
    "READABLE_VERSIONS",
    "STATIC_VERSION",
    "NicHeader",
    "check_image_size",
    "latent_size",
    "pack",
    "read_header",
    "weights_hash",
]

MAGIC = b"\x89NIC"
#: Per version: what its payload holds (latents with the model's own tables, per-image scales of
#: the first or the current kind, or a hyperprior's side information and latents) and the format
#: of its rANS streams.
PAYLOADS: dict[int, tuple[str, int]] = {
    1: ("static", 1),
    2: ("scales-v2", 1),
    3: ("scales", 1),
    4: ("hyperprior", 1),
    5: ("static", 2),
    6: ("scales", 2),
    7: ("hyperprior", 2),
    8: ("scales-idle", 2),
}
#: The versions written: by default, with the model's own tables, with a hyperprior model.
FORMAT_VERSION = 8
STATIC_VERSION = 5
HYPERPRIOR_VERSION = 7
READABLE_VERSIONS = tuple(PAYLOADS)
#: Largest image a file may declare (pixels): bounds the decoder's memory for forged headers.
MAX_PIXELS = 1 << 26
_FIXED = struct.Struct(">8sIIHHHI")  # hash, height, width, channels, latent h, latent w, payload length
_CRC = struct.Struct(">I")
_MIN_SIZE = len(MAGIC) + 2 + _FIXED.size + _CRC.size


@dataclass(frozen=True)
class NicHeader:
    """What a ``.nic`` file says about itself; ``payload_offset`` is where its rANS data starts."""

    model: str
    version: int
    weights_hash: bytes
    height: int
    width: int
    latent_shape: tuple[int, int, int]
    payload_offset: int
    payload_length: int

    @property
    def file_size(self) -> int:
        return self.payload_offset + self.payload_length + _CRC.size


def latent_size(side: int) -> int:
    """Latent positions along an image side of ``side`` pixels (padded up to a multiple of the stride)."""
    return -(-side // STRIDE)


def check_image_size(height: int, width: int) -> None:
    """Refuse an image the format cannot describe (more than :data:`MAX_PIXELS` pixels)."""
    if height * width > MAX_PIXELS or max(height, width) >= 1 << 20:
        raise NicbookError(
            f"image of {width}×{height} pixels is larger than the .nic limit of {MAX_PIXELS} pixels"
        )


def weights_hash(model: nn.Module) -> bytes:
    """First 8 bytes of SHA-256 over the state dict (names, dtypes, shapes, values in name order).

    Written into ``.nic`` files so a decoder can tell that it holds the encoder's exact weights
    and coding tables.
    """
    arrays = {name: tensor.detach().cpu().numpy() for name, tensor in model.state_dict().items()}
    return arrays_digest(arrays).digest()[:8]


def arrays_digest(arrays: Mapping[str, np.ndarray], digest: hashlib._Hash | None = None) -> hashlib._Hash:
    """SHA-256 over named arrays in name order (each name, dtype and shape, then the values),
    continuing ``digest`` if one is given: equal arrays give equal digests on every machine."""
    digest = hashlib.sha256() if digest is None else digest
    for name, array in sorted(arrays.items()):
        array = np.asarray(array, order="C")  # keeps 0-d arrays 0-d
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest


def pack(
    version: int,
    model_name: str,
    digest: bytes,
    size: tuple[int, int],
    latent_shape: tuple[int, int, int],
    payload: bytes,
) -> bytes:
    """A whole ``.nic`` file: header of an image of ``size = (height, width)``, payload, checksum."""
    name = model_name.encode("ascii", errors="replace")[:255]
    body = (
        MAGIC
        + bytes([version, len(name)])
        + name
        + _FIXED.pack(digest, *size, *latent_shape, len(payload))
        + payload
    )
    return body + _CRC.pack(zlib.crc32(body))


def read_header(data: bytes) -> NicHeader:
    """Parse and check a ``.nic`` file's header, length and checksum (no model needed).

    Raises :class:`BitstreamError` naming the problem: not a ``.nic`` file, unsupported version,
    truncated, trailing bytes, checksum mismatch, or an inconsistent or oversized image.
    """
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BitstreamError("not a .nic file (bad magic bytes)")
    if len(data) < _MIN_SIZE:
        raise BitstreamError(f"truncated .nic file: {len(data)} bytes is shorter than any header")
    version, name_length = data[4], data[5]
    if version not in READABLE_VERSIONS:
        raise UnsupportedFormatError(
            f".nic format version {version}; this nicbook reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    fixed_at = 6 + name_length
    if len(data) < fixed_at + _FIXED.size + _CRC.size:
        raise BitstreamError("truncated .nic file: header cut short")
    digest, height, width, channels, latent_h, latent_w, payload_length = _FIXED.unpack_from(
        data, fixed_at
    )
    header = NicHeader(
        data[6:fixed_at].decode("ascii", errors="replace"),
        version,
        digest,
        height,
        width,
        (channels, latent_h, latent_w),
        fixed_at + _FIXED.size,
        payload_length,
    )
    if len(data) < header.file_size:
        raise BitstreamError(f"truncated .nic file: {len(data)} of {header.file_size} bytes")
    if len(data) > header.file_size:
        raise BitstreamError(f".nic file has {len(data) - header.file_size} unexpected trailing bytes")
    (stored_crc,) = _CRC.unpack_from(data, header.file_size - _CRC.size)
    if zlib.crc32(data[: header.file_size - _CRC.size]) != stored_crc:
        raise BitstreamError("corrupt .nic file: CRC-32 checksum mismatch")
    if not (1 <= height and 1 <= width and height * width <= MAX_PIXELS):
        raise BitstreamError(
            f".nic header declares an image of {width}×{height} pixels (limit {MAX_PIXELS})"
        )
    if (latent_h, latent_w) != (latent_size(height), latent_size(width)) or channels < 1:
        raise BitstreamError(
            f".nic header's latent shape {header.latent_shape} does not fit a {width}×{height} image"
        )
    return header
