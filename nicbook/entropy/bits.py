"""MSB-first bit input and output shared by the Huffman, rANS and JPEG coders.

:func:`pack_bits` writes many variable-length codes in one vectorised numpy pass; the
:class:`BitWriter` adds scalar writes on top of it and :class:`BitReader` reads them back.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from nicbook.errors import BitstreamError

MAX_CODE_LENGTH = 64


def _as_codes(values: ArrayLike, lengths: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(values as uint64, lengths as int64)`` vectors of equal size."""
    lengths = np.asarray(lengths, dtype=np.int64).ravel()
    raw = np.asarray(values).ravel()
    if raw.size and not np.issubdtype(raw.dtype, np.integer):
        raise ValueError(f"code values must be integers, got dtype {raw.dtype}")
    if raw.size and raw.dtype.kind == "i" and raw.min() < 0:
        raise ValueError("code values must be non-negative")
    values = raw.astype(np.uint64)
    if values.shape != lengths.shape:
        raise ValueError(f"{values.size} values but {lengths.size} lengths")
    if lengths.size and (lengths.min() < 0 or lengths.max() > MAX_CODE_LENGTH):
        raise ValueError(f"code lengths must be in [0, {MAX_CODE_LENGTH}]")
    short = lengths < MAX_CODE_LENGTH
    if np.any(values[short] >> lengths[short].astype(np.uint64)):
        raise ValueError("a code value does not fit in its length")
    return values, lengths


def pack_bits(values: ArrayLike, lengths: ArrayLike, *, pad_with_ones: bool = False) -> tuple[bytes, int]:
    """Concatenate codes MSB first: code ``i`` is the low ``lengths[i]`` bits of ``values[i]``.

    Returns the bytes and the number of meaningful bits; the last byte is padded with zeros
    (or ones, as JPEG wants, with ``pad_with_ones``). Lengths may be 0 to 64.
    """
    values, lengths = _as_codes(values, lengths)
    n_bits = int(lengths.sum())
    if n_bits == 0:
        return b"", 0
    ends = np.cumsum(lengths)
    owner = np.repeat(np.arange(lengths.size), lengths)
    shift = (ends[owner] - 1 - np.arange(n_bits)).astype(np.uint64)
    bits = ((values[owner] >> shift) & np.uint64(1)).astype(np.uint8)
    packed = np.packbits(bits)
    if pad_with_ones and n_bits % 8:
        packed[-1] |= (1 << (8 - n_bits % 8)) - 1
    return packed.tobytes(), n_bits


class BitWriter:
    """Accumulates bits MSB first; :meth:`to_bytes` pads the last byte."""

    def __init__(self) -> None:
        self._bytes = bytearray()
        self._pending = 0  # bits not yet forming a whole byte, as an integer
        self._n_pending = 0

    @property
    def bit_count(self) -> int:
        """Number of bits written so far."""
        return 8 * len(self._bytes) + self._n_pending

    def write(self, value: int, nbits: int) -> None:
        """Append the low ``nbits`` bits of the non-negative integer ``value``."""
        value, nbits = int(value), int(nbits)
        if nbits < 0 or value < 0 or value >> nbits:
            raise ValueError(f"value {value} does not fit in {nbits} bits")
        self._pending = (self._pending << nbits) | value
        self._n_pending += nbits
        whole, self._n_pending = divmod(self._n_pending, 8)
        if whole:
            self._bytes += (self._pending >> self._n_pending).to_bytes(whole, "big")
            self._pending &= (1 << self._n_pending) - 1

    def write_codes(self, values: ArrayLike, lengths: ArrayLike) -> None:
        """Append many codes at once (vectorised, see :func:`pack_bits`)."""
        values, lengths = _as_codes(values, lengths)
        values = np.concatenate([[np.uint64(self._pending)], values])
        lengths = np.concatenate([[self._n_pending], lengths])
        data, n_bits = pack_bits(values, lengths)
        whole, self._n_pending = divmod(n_bits, 8)
        self._bytes += data[:whole]
        self._pending = data[whole] >> (8 - self._n_pending) if self._n_pending else 0

    def to_bytes(self, *, pad_with_ones: bool = False) -> bytes:
        """The bytes written so far, the last one padded with zero (or one) bits."""
        if not self._n_pending:
            return bytes(self._bytes)
        pad = 8 - self._n_pending
        last = (self._pending << pad) | ((1 << pad) - 1 if pad_with_ones else 0)
        return bytes(self._bytes) + bytes([last])


class BitReader:
    """Reads bits MSB first from ``data``; reading past the end raises :class:`BitstreamError`."""

    def __init__(self, data: bytes, n_bits: int | None = None) -> None:
        self._data = bytes(data)
        total = 8 * len(self._data)
        if n_bits is None:
            n_bits = total
        if not 0 <= n_bits <= total:
            raise ValueError(f"n_bits must be in [0, {total}], got {n_bits}")
        self.n_bits = n_bits
        self.position = 0

    @property
    def bits_left(self) -> int:
        return self.n_bits - self.position

    def peek(self, nbits: int) -> int:
        """The next ``nbits`` bits without consuming them; bits past the end read as 0."""
        if nbits < 0:
            raise ValueError("nbits must be non-negative")
        if nbits == 0:
            return 0
        start, stop = self.position >> 3, (self.position + nbits + 7) >> 3
        chunk_bytes = self._data[start:stop]
        chunk = int.from_bytes(chunk_bytes, "big") << 8 * (stop - start - len(chunk_bytes))
        value = (chunk >> (8 * stop - self.position - nbits)) & ((1 << nbits) - 1)
        available = self.bits_left
        if available < nbits:  # mask bits beyond n_bits (inside the last byte)
            value &= ~((1 << (nbits - max(available, 0))) - 1)
        return value

    def read(self, nbits: int) -> int:
        """Consume and return the next ``nbits`` bits as an unsigned integer."""
        if nbits > self.bits_left:
            raise BitstreamError(f"stream truncated: wanted {nbits} bits, {self.bits_left} left")
        value = self.peek(nbits)
        self.position += nbits
        return value

    def skip(self, nbits: int) -> None:
        """Consume ``nbits`` bits."""
        if not 0 <= nbits <= self.bits_left:
            raise BitstreamError(f"stream truncated: cannot skip {nbits} bits, {self.bits_left} left")
        self.position += nbits

    def align_to_byte(self) -> None:
        """Skip to the next byte boundary."""
        self.skip(min(-self.position % 8, self.bits_left))


def encode_uvarint(value: int) -> bytes:
    """LEB128 encoding of a non-negative integer (7 bits per byte, low groups first)."""
    value = int(value)
    if value < 0:
        raise ValueError("uvarint values must be non-negative")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def decode_uvarint(data: bytes, position: int = 0, max_bytes: int = 10) -> tuple[int, int]:
    """Read a LEB128 integer at ``position``; returns ``(value, position after it)``."""
    value = 0
    for i in range(max_bytes):
        if position + i >= len(data):
            raise BitstreamError("stream truncated inside a variable-length integer")
        byte = data[position + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, position + i + 1
    raise BitstreamError(f"variable-length integer longer than {max_bytes} bytes")
