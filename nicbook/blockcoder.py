"""A block transform coder with a KLT or DCT basis that writes real bits.

The pipeline is the classic one of transform coding:

1. colour transform RGB → YCbCr (JFIF's, in libjpeg's integer arithmetic, shared with
   :mod:`nicbook.jpeg`), level shifted to be centred on zero;
2. each channel is cut into ``n × n`` blocks (:func:`nicbook.transforms.blockify`) and every block,
   flattened to a vector, is projected onto the rows of an orthonormal basis: the 2-D DCT in
   zig-zag order (:class:`DCTCoder`) or a Karhunen–Loève basis learned from photos
   (:class:`KLTCoder`);
3. coefficient ``k`` is quantized with a dead-zone uniform quantizer
   (:mod:`nicbook.deadzone`) of step ``step · (1 + frequency_weighting · k / (n² - 1))``; with the
   default ``frequency_weighting = 0`` every coefficient gets the same step, which is what
   minimises MSE for an orthonormal transform at high rate. Coefficient 0 (the block mean for
   the DCT, the first principal component for the KLT) is coded as the difference to the
   previous block's (DPCM, as JPEG does for DC);
4. the integers are entropy coded with nicbook's rANS coder, one static table per channel and
   coefficient index. Each table is a two-parameter discrete model (probability of zero, then a
   geometric decay of ``|q|``, symmetric in sign) truncated to the largest ``|q|`` that occurs;
   the three numbers are sent in the header (one to three bytes), so every bit the decoder
   needs is in the file and counted in the rate.

A basis learned on training photos is part of the decoder, like a neural codec's weights: the
stream stores only its fingerprint. :meth:`KLTCoder.from_image` instead learns the basis on the
image being coded and sends it (float16, only the rows of coefficients that are used), so its
price shows up in the file size.

Stream layout (little endian), version 3::

    magic "NBTC" | version u8 | basis kind u8 | block size u8 | height u32 | width u32
    | step f32 | frequency_weighting f32 | reconstruction_offset f32 | basis fingerprint u32
    | per channel and coefficient: uvarint (LEB128) max |q|, then (if > 0) zero code u8, spread code u8
    | [embedded basis: float16 rows of the used coefficients]
    | (if any max |q| > 0) uvarint blocks per segment K | per segment: uvarint length, rANS stream
    | CRC-32 of everything before it (u32)

The blocks, in raster order, are cut into segments of ``K`` (the last one shorter); each segment is
an independent rANS stream of its blocks' indices, coefficient pair after pair (channel 0's
coefficient 0 of every block of the segment, then its coefficient 1, ...), leaving out the pairs
that are zero everywhere. The encoder makes ``K`` as many whole block rows as keep a segment within
the coder's ``segment_symbols`` indices (part of one row when a row alone holds more); a decoder
refuses segments of more than :data:`SEGMENT_SYMBOLS` (or one block). The DPCM of coefficient 0 runs over all
blocks, across segments, and the tables are fitted over the whole image. So the decoder works one
segment at a time: decode its indices, then dequantize, synthesise and convert the colours of a few
blocks after another into the output image, in a few bytes per pixel beyond it (the encoder holds
the image's indices as int16, and a segment's working memory). Versions 1 and 2 (still read) had the
same fields with one rANS stream for the whole image.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np
from tqdm.auto import tqdm

from nicbook.data import has_training_photos, load_image, training_photos
from nicbook.entropy import FrequencyTables, decode_uvarint, encode_uvarint, lane_count, rans_decode, rans_encode
from nicbook.entropy.rans import LANE_BITS, check_capacity, fewest_lanes, most_lanes
from nicbook.errors import BitstreamError, ImageFormatError, UnsupportedFormatError
from nicbook.jpeg.color import rgb_to_ycbcr, ycbcr_to_rgb
from nicbook.deadzone import dequantize, quantize
from nicbook.transforms import blockify, dct_basis, learn_klt_basis, unblockify

__all__ = [
    "BlockTransformCoder",
    "DCTCoder",
    "KLTCoder",
    "StreamHeader",
    "basis_fingerprint",
    "coefficient_steps",
    "read_header",
    "sample_luma_blocks",
    "training_klt_coder",
]

MAGIC = b"NBTC"
VERSION = 3
#: rANS stream format of each version read (version 1: the coder's format 1).
STREAM_FORMATS = {1: 1, 2: 2, 3: 2}
#: Most indices in one segment of a version-3 stream (unless one block holds more): what bounds
#: the decoder's and the encoder's working memory, whatever the image's size.
SEGMENT_SYMBOLS = 1 << 17
#: Pixels that analysis (and quantization) and synthesis (and dequantization and the colour
#: transform) handle at a time, at least one block: about 200 and 300 bytes each, and one matrix
#: product per piece (a multithreaded BLAS call costs milliseconds of synchronisation on a busy machine).
ANALYSIS_PIXELS = 1 << 16
SYNTHESIS_PIXELS = 1 << 15
#: Each segment's lanes: about ``sqrt(information / LANE_TIME_BITS)``, which balances the lane
#: loop's rows against the serial starter's work per lane, but at most what costs
#: ``SEGMENT_OVERHEAD`` of the information.
LANE_TIME_BITS = 10.0
SEGMENT_OVERHEAD = 0.003
#: Largest image the coder accepts (and the decoder believes a header about), in pixels.
MAX_PIXELS = 1 << 24
#: Largest block size: the basis has ``n² × n²`` entries.
MAX_BLOCK_SIZE = 32
#: Precision of the rANS frequency tables, in bits.
TABLE_PRECISION = 16
#: The largest ``|q|`` a table may cover; smaller steps than this allows raise ``ValueError``.
MAX_ABS_INDEX = 1 << 14
#: The most entries all tables together may have (``2 max |q| + 2`` each): what building them costs
#: is bounded, whatever a header says. Photos reach a few hundred thousand at step 0.5.
MAX_TABLE_ENTRIES = 1 << 21

_BASIS_DCT, _BASIS_SHARED, _BASIS_EMBEDDED = 0, 1, 2
_BASIS_NAMES = {_BASIS_DCT: "dct", _BASIS_SHARED: "shared", _BASIS_EMBEDDED: "embedded"}
_HEADER = struct.Struct("<4sBBBIIfffI")
_CRC = struct.Struct("<I")
_LEVEL_SHIFT = 128.0
_SIXTEENTH_OCTAVE = 0.9576032806985737  # 2 ** (-1 / 16)


@dataclass(frozen=True)
class StreamHeader:
    """The fixed-size fields at the start of a stream."""

    basis_kind: str
    block_size: int
    height: int
    width: int
    step: float
    frequency_weighting: float
    reconstruction_offset: float
    basis_fingerprint: int
    version: int = VERSION


def basis_fingerprint(basis: np.ndarray) -> int:
    """CRC-32 of the basis rounded to float16: identifies a shared basis, robust to last-bit noise."""
    return zlib.crc32(np.asarray(basis, dtype="<f2").tobytes())


def coefficient_steps(step: float, n_coefficients: int, frequency_weighting: float) -> np.ndarray:
    """Step of each coefficient index: ``step · (1 + frequency_weighting · k / (K - 1))``."""
    rank = np.arange(n_coefficients) / max(n_coefficients - 1, 1)
    return np.float32(step) * (1.0 + np.float32(frequency_weighting) * rank)


# --- the per-coefficient probability model ---------------------------------------------------


def _fit_model(largest: int, nonzero: int, total: int, count: int) -> tuple[int, int, int]:
    """``(max |q|, zero code, spread code)`` of one coefficient's ``count`` indices, from their
    largest ``|q|``, how many are not zero and the sum of their ``|q|``.

    ``P(0) = 1 - 2^(-zero/16)`` and, given ``q ≠ 0``, ``|q|`` is geometric with mean
    ``2^(spread/16)``; both codes are quantized logarithmically to one byte.
    """
    if largest == 0:
        return 0, 0, 0
    zero_code = int(np.clip(np.round(-16 * np.log2(nonzero / count)), 0, 255))
    spread_code = int(np.clip(np.round(16 * np.log2(total / nonzero)), 0, 255))
    return largest, zero_code, spread_code


def _two_to_minus_sixteenths(code: int) -> float:
    """``2^(-code/16)`` from IEEE products only, so every machine builds the same table."""
    mantissa = 1.0
    for _ in range(code % 16):
        mantissa *= _SIXTEENTH_OCTAVE
    return math.ldexp(mantissa, -(code // 16))


def _model_pmf(max_abs: int, zero_code: int, spread_code: int) -> np.ndarray:
    """The pmf over ``-max_abs, ..., max_abs`` described by :func:`_fit_model`'s codes.

    Built from products and an exactly rounded sum only; :func:`nicbook.entropy.quantize_pmf`
    turns it into integers the same way on every machine.
    """
    p_nonzero = _two_to_minus_sixteenths(zero_code)
    decay = 1.0 - _two_to_minus_sixteenths(spread_code)
    tail = np.cumprod(np.concatenate([[1.0], np.full(max_abs - 1, decay)]))
    tail = tail * (p_nonzero / (2 * math.fsum(tail.tolist())))
    return np.concatenate([tail[::-1], [1.0 - p_nonzero], tail])


class _Reader:
    """Reads header fields from a bytes object, raising :class:`BitstreamError` past its end."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.data):
            raise BitstreamError("block coder stream is truncated")
        chunk = self.data[self.position : self.position + count]
        self.position += count
        return chunk

    def uvarint(self) -> int:
        value, self.position = decode_uvarint(self.data, self.position, max_bytes=3)
        return value


# --- the coder --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """The blocks of an ``height × width`` image in ``n × n`` blocks, and how to walk them in pieces."""

    height: int
    width: int
    n: int

    @property
    def rows(self) -> int:
        return -(-self.height // self.n)

    @property
    def cols(self) -> int:
        return -(-self.width // self.n)

    @property
    def blocks(self) -> int:
        return self.rows * self.cols

    def pieces(self, first: int, end: int, pixels: int) -> Iterator[tuple[int, int, tuple[int, int, int, int]]]:
        """Blocks ``first`` to ``end`` (raster order) in runs of at most ``pixels`` pixels (one block
        at least), each whole block rows or part of one: ``(first, end, (row, end row, column, end
        column))``."""
        cols, most = self.cols, max(1, pixels // self.n**2)
        block = first
        while block < end:
            row, col = divmod(block, cols)
            if col == 0 and end - block >= cols and cols <= most:
                count = min((end - block) // cols, most // cols)
                yield block, block + count * cols, (row, row + count, 0, cols)
                block += count * cols
            else:
                stop = min(cols, col + most, col + end - block)
                yield block, block + stop - col, (row, row + 1, col, stop)
                block += stop - col

    def box(self, rect: tuple[int, int, int, int]) -> tuple[slice, slice]:
        """The pixels of a piece's blocks that lie in the image."""
        row, end_row, col, end_col = rect
        n = self.n
        return slice(row * n, min(self.height, end_row * n)), slice(col * n, min(self.width, end_col * n))


@dataclass(frozen=True)
class _Stream:
    """A parsed stream: its header, coefficient models, basis and payload."""

    header: StreamHeader
    models: list[list[tuple[int, int, int]]]
    basis: np.ndarray
    payload: bytes
    pairs: list[tuple[int, int]]
    tables: FrequencyTables | None

    @property
    def grid(self) -> _Grid:
        return _Grid(self.header.height, self.header.width, self.header.block_size)


class BlockTransformCoder:
    """Transform coder over ``n × n`` blocks with an orthonormal ``basis`` (rows = basis vectors).

    Parameters
    ----------
    basis:
        ``(n², n²)`` orthonormal matrix; coefficient ``k`` of a block ``x`` is ``basis[k] @ x``.
    embed_basis:
        Send the basis (float16) in every stream instead of assuming the decoder has it.
    rounding:
        Encoder rounding of :func:`nicbook.deadzone.quantize`; below 1/2 it widens the dead zone.
    reconstruction_offset:
        Decoder offset of :func:`nicbook.deadzone.dequantize` (sent in the stream).
    frequency_weighting:
        Coarsens the step linearly with the coefficient index (0: one step for all).
    segment_symbols:
        Most indices the encoder puts in one rANS segment (at most :data:`SEGMENT_SYMBOLS`, which
        is the default); smaller segments cost a little rate and speed.

    The defaults (``rounding = 3/8``, no offset) were chosen on training photos: about 6 % fewer
    bits than plain rounding at equal PSNR for the DCT. With the dead zone, the cells of
    ``|q| ≥ 1`` start at ``5/8`` of a step, so reconstructing at ``|q| · step`` already sits below
    their midpoints and a further offset costs PSNR.
    """

    kind = _BASIS_SHARED

    def __init__(
        self,
        basis: np.ndarray,
        *,
        embed_basis: bool = False,
        rounding: float = 0.375,
        reconstruction_offset: float = 0.0,
        frequency_weighting: float = 0.0,
        segment_symbols: int = SEGMENT_SYMBOLS,
    ) -> None:
        basis = np.asarray(basis, dtype=np.float64)
        size = int(round(np.sqrt(basis.shape[0]))) if basis.ndim == 2 else 0
        if basis.ndim != 2 or basis.shape != (size * size, size * size) or not 1 <= size <= MAX_BLOCK_SIZE:
            raise ValueError(f"basis must be (n², n²) with 1 <= n <= {MAX_BLOCK_SIZE}, got shape {basis.shape}")
        if not np.allclose(basis @ basis.T, np.eye(len(basis)), atol=1e-3):
            raise ValueError("basis rows must be orthonormal")
        if not 0.0 <= rounding <= 0.5 or not 0.0 <= reconstruction_offset < 0.5:
            raise ValueError("rounding must lie in [0, 0.5] and reconstruction_offset in [0, 0.5)")
        if frequency_weighting < 0:
            raise ValueError("frequency_weighting must be non-negative")
        if isinstance(segment_symbols, bool) or not 1 <= int(segment_symbols) <= SEGMENT_SYMBOLS:
            raise ValueError(f"segment_symbols must be an integer from 1 to {SEGMENT_SYMBOLS}, got {segment_symbols!r}")
        self.embed_basis = bool(embed_basis)
        # An embedded basis is sent as float16; the encoder uses exactly what the decoder will get.
        self.basis = basis.astype(np.float16).astype(np.float64) if self.embed_basis else basis
        self.block_size = size
        self.rounding = float(rounding)
        self.reconstruction_offset = float(reconstruction_offset)
        self.frequency_weighting = float(frequency_weighting)
        self.segment_symbols = int(segment_symbols)
        self.fingerprint = basis_fingerprint(self.basis)

    def __repr__(self) -> str:
        sent = ", embedded basis" if self.embed_basis else ""
        return f"{type(self).__name__}(block_size={self.block_size}{sent})"

    # ---- analysis and synthesis ----

    def analyse(self, image: np.ndarray) -> np.ndarray:
        """Transform coefficients ``(3, blocks, n²)`` of an RGB image (blocks in raster order)."""
        image = _check_image(image)
        grid = _Grid(*image.shape[:2], self.block_size)
        coefficients = np.empty((3, grid.blocks, self.block_size**2))
        for first, end, rect in grid.pieces(0, grid.blocks, ANALYSIS_PIXELS):
            coefficients[:, first:end] = self._analyse_piece(image, grid, rect)
        return coefficients

    def _analyse_piece(self, image: np.ndarray, grid: _Grid, rect: tuple[int, int, int, int]) -> np.ndarray:
        """Coefficients ``(3, blocks, n²)`` of one piece's blocks (the image's edge replicated)."""
        planes = rgb_to_ycbcr(image[grid.box(rect)]).astype(np.float64) - _LEVEL_SHIFT
        n = self.block_size
        vectors = np.concatenate([blockify(plane, n).reshape(-1, n * n) for plane in planes])
        return (vectors @ self.basis.T).reshape(3, -1, n * n)  # one matrix product: one BLAS call

    def synthesise(self, coefficients: np.ndarray, shape: tuple[int, int], basis: np.ndarray | None = None) -> np.ndarray:
        """Inverse of :meth:`analyse`: an ``(H, W, 3)`` uint8 image from ``(3, blocks, n²)`` coefficients."""
        basis = self.basis if basis is None else basis
        grid = _Grid(*(int(s) for s in shape), int(round(np.sqrt(basis.shape[1]))))
        coefficients = np.asarray(coefficients)
        if coefficients.shape != (3, grid.blocks, basis.shape[1]):
            raise ValueError(f"expected coefficients of shape {(3, grid.blocks, basis.shape[1])}, got {coefficients.shape}")
        image = np.empty((grid.height, grid.width, 3), dtype=np.uint8)
        for first, end, rect in grid.pieces(0, grid.blocks, SYNTHESIS_PIXELS):
            _synthesise_piece(coefficients[:, first:end], basis, grid, rect, image)
        return image

    def truncated(self, image: np.ndarray, keep: int) -> np.ndarray:
        """``image`` rebuilt from the first ``keep`` coefficients of every block, unquantized.

        Coefficients ``keep`` and beyond are set to zero in every channel: the picture a reader
        sees when a basis is cut after ``keep`` vectors (``keep = n²`` gives back the image, up to
        the colour transform's rounding).
        """
        if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or not 0 <= keep <= self.block_size**2:
            raise ValueError(f"keep must be an integer from 0 to {self.block_size**2}, got {keep!r}")
        coefficients = self.analyse(image)
        coefficients[..., keep:] = 0.0
        return self.synthesise(coefficients, image.shape[:2])

    def steps(self, step: float) -> np.ndarray:
        """The quantization step of every coefficient index for base step ``step``."""
        return coefficient_steps(step, self.block_size**2, self.frequency_weighting)

    def quantized_coefficients(self, image: np.ndarray, step: float) -> np.ndarray:
        """The int64 indices ``(3, blocks, n²)`` that :meth:`encode` writes for ``image`` at ``step``."""
        step = _check_step(step)
        return quantize(self.analyse(image), self.steps(step), self.rounding)

    # ---- encoding ----

    def encode(self, image: np.ndarray, step: float) -> bytes:
        """Compress an ``(H, W, 3)`` uint8 image with base quantization step ``step`` (in pixel units)."""
        image = _check_image(image)
        step = _check_step(step)
        symbols, models = self._symbols_and_models(image, step)
        height, width = image.shape[:2]
        out = bytearray(
            _HEADER.pack(
                MAGIC, VERSION, self._stream_kind(), self.block_size, height, width, step,
                self.frequency_weighting, self.reconstruction_offset, self.fingerprint,
            )
        )
        for channel_models in models:
            for max_abs, zero_code, spread_code in channel_models:
                out += encode_uvarint(max_abs)
                if max_abs:
                    out += bytes((zero_code, spread_code))
        used = _used_coefficients(models)
        if self.embed_basis:
            out += self.basis[used].astype("<f2").tobytes()
        out += _encode_segments(symbols, models, width, self.block_size, self.segment_symbols)
        out += _CRC.pack(zlib.crc32(out))
        return bytes(out)

    def _symbols_and_models(self, image: np.ndarray, step: float) -> tuple[np.ndarray, list[list[tuple[int, int, int]]]]:
        """The symbols ``(3, blocks, n²)`` as int16 (indices, coefficient 0 as differences) and the
        model of each (channel, coefficient), analysed and quantized a piece at a time."""
        grid = _Grid(*image.shape[:2], self.block_size)
        n2, steps = self.block_size**2, self.steps(step)
        symbols = np.empty((3, grid.blocks, n2), dtype=np.int16)
        largest, nonzero, total = (np.zeros((3, n2), dtype=np.int64) for _ in range(3))
        previous = np.zeros(3, dtype=np.int64)
        for first, end, rect in grid.pieces(0, grid.blocks, ANALYSIS_PIXELS):  # as analyse() cuts them
            piece = quantize(self._analyse_piece(image, grid, rect), steps, self.rounding)
            previous = _dc_to_differences(piece, previous)
            magnitude = np.abs(piece)
            if magnitude.max() > MAX_ABS_INDEX or magnitude.min() < 0:  # (below 0: int64 overflow)
                raise ValueError(f"step {step} is too small: indices exceed ±{MAX_ABS_INDEX}")
            np.maximum(largest, magnitude.max(axis=1), out=largest)
            nonzero += np.count_nonzero(magnitude, axis=1)
            total += magnitude.sum(axis=1)
            symbols[:, first:end] = piece
        models = [
            [_fit_model(int(largest[c, k]), int(nonzero[c, k]), int(total[c, k]), grid.blocks) for k in range(n2)]
            for c in range(3)
        ]
        if _table_entries(models) > MAX_TABLE_ENTRIES:
            raise ValueError(f"step {step} is too small: the tables would exceed {MAX_TABLE_ENTRIES} entries")
        return symbols, models

    def _stream_kind(self) -> int:
        return _BASIS_EMBEDDED if self.embed_basis else self.kind

    # ---- decoding ----

    def decode(self, data: bytes) -> np.ndarray:
        """Decompress a stream written by :meth:`encode` (of any coder with the same basis).

        A version-3 stream is decoded a segment at a time into the output image: a few bytes per
        pixel beyond the image itself, whatever its size.
        """
        stream = self._parse(data)
        header, grid = stream.header, stream.grid
        steps = self.steps_for(header)
        segments = _segments(stream)  # checks the segment lengths before the image is allocated
        image = np.empty((header.height, header.width, 3), dtype=np.uint8)
        for first, end, rect, indices in _indices(stream, segments):
            coefficients = dequantize(indices, steps, header.reconstruction_offset)
            _synthesise_piece(coefficients, stream.basis, grid, rect, image)
        return image

    def decode_coefficients(self, data: bytes) -> np.ndarray:
        """The quantization indices ``(3, blocks, n²)`` stored in a stream."""
        stream = self._parse(data)
        segments = _segments(stream)
        indices = np.empty((3, stream.grid.blocks, stream.header.block_size**2), dtype=np.int64)
        for first, end, _, piece in _indices(stream, segments):
            indices[:, first:end] = piece
        return indices

    @staticmethod
    def steps_for(header: StreamHeader) -> np.ndarray:
        """The coefficient steps a stream was quantized with."""
        return coefficient_steps(header.step, header.block_size**2, header.frequency_weighting)

    def _parse(self, data: bytes) -> _Stream:
        header = read_header(data)
        data = bytes(data)
        n = header.block_size
        reader = _Reader(data, _HEADER.size)
        models = []
        for _ in range(3):
            channel_models = []
            for _ in range(n * n):
                max_abs = reader.uvarint()
                if max_abs > MAX_ABS_INDEX:
                    raise BitstreamError("table size out of range in block coder stream")
                codes = tuple(reader.take(2)) if max_abs else (0, 0)
                channel_models.append((max_abs, *codes))
            models.append(channel_models)
        if _table_entries(models) > MAX_TABLE_ENTRIES:
            raise BitstreamError(f"block coder stream declares tables of more than {MAX_TABLE_ENTRIES} entries")
        used = _used_coefficients(models)
        basis = self._decoder_basis(header, reader, used)
        pairs = _coded_pairs(models)
        tables = _tables(models, pairs) if pairs else None
        return _Stream(header, models, basis, data[reader.position : len(data) - _CRC.size], pairs, tables)

    def _decoder_basis(self, header: StreamHeader, reader: _Reader, used: np.ndarray) -> np.ndarray:
        n2 = header.block_size**2
        if header.basis_kind == "embedded":
            basis = np.zeros((n2, n2))
            raw = reader.take(int(used.sum()) * n2 * 2)
            basis[used] = np.frombuffer(raw, dtype="<f2").reshape(-1, n2).astype(np.float64)
            if not np.all(np.isfinite(basis)):
                raise BitstreamError("embedded basis holds non-finite values")
            return basis
        same_size = header.block_size == self.block_size
        if header.basis_kind == "dct":
            return self.basis if self.kind == _BASIS_DCT and same_size else dct_basis(header.block_size)
        if header.basis_fingerprint != self.fingerprint or not same_size:
            raise BitstreamError("stream was written with a different basis than this decoder holds")
        return self.basis


class DCTCoder(BlockTransformCoder):
    """:class:`BlockTransformCoder` with the 2-D DCT basis (zig-zag order): JPEG's transform."""

    kind = _BASIS_DCT

    def __init__(self, block_size: int = 8, **options: float) -> None:
        super().__init__(dct_basis(block_size), **options)


class KLTCoder(BlockTransformCoder):
    """:class:`BlockTransformCoder` with a Karhunen–Loève basis learned from luma blocks."""

    @classmethod
    def learn(
        cls,
        images: Iterable[np.ndarray | str | PathLike[str]],
        block_size: int = 8,
        n_blocks: int = 100_000,
        seed: int = 0,
        progress: bool = False,
        **options: float,
    ) -> KLTCoder:
        """Learn the basis on up to ``n_blocks`` random luma blocks, spread evenly over ``images``.

        ``images`` are arrays or paths (loaded with :func:`nicbook.data.load_image`). Use training
        photos (:func:`nicbook.data.training_image_paths`), never the images you evaluate on.
        """
        blocks = sample_luma_blocks(images, block_size, n_blocks, seed, progress)
        return cls(learn_klt_basis(blocks), **options)

    @classmethod
    def from_image(cls, image: np.ndarray, block_size: int = 8, **options: float) -> KLTCoder:
        """A coder whose basis is learned on ``image`` itself and sent with every stream."""
        blocks = sample_luma_blocks([image], block_size, n_blocks=None)
        return cls(learn_klt_basis(blocks), embed_basis=True, **options)


def training_klt_coder(
    n_photos: int = 200, n_blocks: int = 60_000, seed: int = 0, block_size: int = 8
) -> tuple[KLTCoder, str]:
    """The book's KLT coder: learned on ``n_blocks`` luma blocks of ``n_photos`` random training photos.

    Returns the coder and a sentence naming what it was learned on. Without training photos
    (``$NICBOOK_DATA/train`` absent) it learns on the stand-in photo that
    :func:`nicbook.data.training_photos` puts in their place (matplotlib's Grace Hopper portrait,
    never an evaluation image), and the sentence says so.
    """
    paths, _ = training_photos()
    chosen = np.random.default_rng(seed).choice(len(paths), min(n_photos, len(paths)), replace=False)
    coder = KLTCoder.learn([paths[i] for i in sorted(chosen)], block_size, n_blocks=n_blocks, seed=seed)
    if has_training_photos():
        return coder, f"{n_blocks:,} luma blocks of {len(chosen)} of the {len(paths)} training photos"
    return coder, (
        "matplotlib's Grace Hopper portrait (no training photos found: set NICBOOK_DATA), one "
        "photo standing in for a training set, so the basis is less general than one learned on many"
    )


def sample_luma_blocks(
    images: Iterable[np.ndarray | str | PathLike[str]],
    block_size: int = 8,
    n_blocks: int | None = 100_000,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Level-shifted luma blocks ``(N, n²)`` from ``images``: all of them, or ``n_blocks`` drawn at random."""
    sources = list(images)
    if not sources:
        raise ValueError("need at least one image to learn a basis")
    rng = np.random.default_rng(seed)
    per_image = None if n_blocks is None else -(-n_blocks // len(sources))
    chunks = []
    for source in tqdm(sources, desc="sampling blocks", disable=not progress):
        image = _check_image(source if isinstance(source, np.ndarray) else load_image(source))
        luma = rgb_to_ycbcr(image)[0].astype(np.float64) - _LEVEL_SHIFT
        vectors = blockify(luma, block_size).reshape(-1, block_size**2)
        if per_image is not None and per_image < len(vectors):
            vectors = vectors[rng.choice(len(vectors), per_image, replace=False)]
        chunks.append(vectors)
    return np.concatenate(chunks)[:n_blocks]


def read_header(data: bytes) -> StreamHeader:
    """Check magic, version, sizes and CRC of a stream and return its fixed header."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER.size + _CRC.size:
        raise BitstreamError("block coder stream is truncated")
    magic, version, kind, n, height, width, step, weighting, offset, fingerprint = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError("not a block coder stream (bad magic)")
    if version not in STREAM_FORMATS:
        raise UnsupportedFormatError(f"block coder stream version {version} is not supported")
    (stored_crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(data[: -_CRC.size]) != stored_crc:
        raise BitstreamError("block coder stream is corrupt (CRC mismatch)")
    if kind not in _BASIS_NAMES or not 1 <= n <= MAX_BLOCK_SIZE:
        raise BitstreamError("invalid basis kind or block size in block coder stream")
    if height == 0 or width == 0 or height * width > MAX_PIXELS:
        raise BitstreamError(f"invalid image size {height}×{width} in block coder stream")
    if not (np.isfinite(step) and step > 0 and np.isfinite(weighting) and weighting >= 0 and 0 <= offset < 0.5):
        raise BitstreamError("invalid quantizer parameters in block coder stream")
    return StreamHeader(_BASIS_NAMES[kind], n, height, width, step, weighting, offset, fingerprint, version)


# --- entropy coding of the indices --------------------------------------------------------------


def _dc_to_differences(piece: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """In place: coefficient 0 of each block of ``piece`` ``(3, blocks, n²)`` less the previous
    block's, ``previous`` (per channel) before its first. Returns the piece's last coefficients 0."""
    dc = piece[:, :, 0].copy()
    piece[:, 1:, 0] -= dc[:, :-1]
    piece[:, 0, 0] -= previous
    return dc[:, -1]


def _differences_to_dc(piece: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_dc_to_differences`, in place; returns the piece's last coefficients 0."""
    piece[:, :, 0] = np.cumsum(piece[:, :, 0], axis=1) + previous[:, None]
    return piece[:, -1, 0].copy()


def _used_coefficients(models: Sequence[Sequence[tuple[int, int, int]]]) -> np.ndarray:
    """Coefficient indices that are non-zero in at least one channel."""
    return np.array([[model[0] > 0 for model in channel] for channel in models]).any(axis=0)


def _coded_pairs(models: Sequence[Sequence[tuple[int, int, int]]]) -> list[tuple[int, int]]:
    """The (channel, coefficient) pairs with a non-zero index somewhere, in coding order."""
    return [(c, k) for c, channel in enumerate(models) for k, model in enumerate(channel) if model[0] > 0]


def _table_entries(models: Sequence[Sequence[tuple[int, int, int]]]) -> int:
    """How many entries the tables of the coded pairs have (values and ESCAPE)."""
    return sum(2 * model[0] + 2 for channel in models for model in channel if model[0] > 0)


def _tables(models: Sequence[Sequence[tuple[int, int, int]]], pairs: list[tuple[int, int]]) -> FrequencyTables:
    """rANS tables of the coded (channel, coefficient) pairs."""
    pmfs = [_model_pmf(*models[c][k]) for c, k in pairs]
    offsets = [-models[c][k][0] for c, k in pairs]
    return FrequencyTables.from_pmfs(pmfs, offsets, precision=TABLE_PRECISION, escape_probability=0.0)


def _blocks_per_segment(n_pairs: int, cols: int, budget: int) -> int:
    """Blocks per segment: as many whole block rows as keep it within ``budget`` indices, else as
    many blocks of one row (one at least)."""
    if n_pairs * cols <= budget:
        return budget // (n_pairs * cols) * cols
    return max(1, budget // n_pairs)


def _segment_lanes(n_symbols: int, information_bits: float) -> int:
    """rANS lanes for a segment (see :data:`LANE_TIME_BITS` and :data:`SEGMENT_OVERHEAD`)."""
    lanes = min(math.sqrt(information_bits / LANE_TIME_BITS), SEGMENT_OVERHEAD * information_bits / LANE_BITS)
    lanes = max(int(lanes), lane_count(n_symbols, information_bits))
    return min(max(lanes, fewest_lanes(n_symbols)), most_lanes(n_symbols))


def _encode_segments(
    symbols: np.ndarray, models: Sequence[Sequence[tuple[int, int, int]]], width: int, n: int, budget: int
) -> bytes:
    """The payload of a version-3 stream: blocks per segment, then each segment's length and rANS stream."""
    pairs = _coded_pairs(models)
    if not pairs:
        return b""
    tables = _tables(models, pairs)
    channel, coefficient = np.array(pairs).T
    per_segment = _blocks_per_segment(len(pairs), -(-width // n), budget)
    # Each table's cost of each index: every index lies in its table's range.
    bits_of = [tables.entry_bits(np.arange(start, start + size)) for start, size in zip(tables.starts, tables.sizes)]
    out = bytearray(encode_uvarint(per_segment))
    for first in range(0, symbols.shape[1], per_segment):
        values = symbols[channel, first : first + per_segment, coefficient]
        bits = math.fsum(float(bits_of[j][row - offset].sum()) for j, (row, offset) in enumerate(zip(values, tables.offsets)))
        table_of = np.repeat(np.arange(len(pairs), dtype=np.int16), values.shape[1])
        segment = rans_encode(values.ravel(), table_of, tables, lanes=_segment_lanes(values.size, bits))
        out += encode_uvarint(len(segment)) + segment
    return bytes(out)


def _segments(stream: _Stream) -> list[tuple[int, int, memoryview]]:
    """The segments of a stream's payload, ``(first block, end block, rANS stream)``, checked
    against the payload's length before anything is decoded: a forged header cannot make the
    decoder allocate or work for an image its payload is too short for. Versions 1 and 2 have one."""
    grid, payload, pairs = stream.grid, memoryview(stream.payload), stream.pairs
    if not pairs:
        if payload:
            raise BitstreamError("unexpected data after an all-zero block coder stream")
        return [(0, grid.blocks, payload)]
    if stream.header.version < 3:
        # A symbol costs at least -log2(1 - 3 / 2**16) > 1 / 16384 bits: every table has at least
        # three other entries (-1, +1 and ESCAPE) of frequency >= 1.
        if grid.blocks * len(pairs) > 8 * len(payload) * 16_384:
            raise BitstreamError("block coder stream is too short for the image size in its header")
        return [(0, grid.blocks, payload)]
    per_segment, position = decode_uvarint(payload, 0, max_bytes=3)
    if not 1 <= per_segment <= max(1, SEGMENT_SYMBOLS // len(pairs)):
        raise BitstreamError(f"block coder stream declares segments of {per_segment} blocks of {len(pairs)} indices")
    # Each segment takes at least two bytes: its length and its rANS stream's lane count.
    if 2 * -(-grid.blocks // per_segment) > len(payload) - position:
        raise BitstreamError("block coder stream is too short for the image size in its header")
    segments = []
    for first in range(0, grid.blocks, per_segment):
        end = min(grid.blocks, first + per_segment)
        length, position = decode_uvarint(payload, position, max_bytes=4)
        if length > len(payload) - position:
            raise BitstreamError("block coder stream is truncated")
        what = f"the {(end - first) * len(pairs)} indices of blocks {first} to {end - 1}"
        check_capacity(length, np.full(len(pairs), end - first), stream.tables, what)
        segments.append((first, end, payload[position : position + length]))
        position += length
    if position != len(payload):
        raise BitstreamError("unexpected data after the last segment of a block coder stream")
    return segments


def _indices(
    stream: _Stream, segments: list[tuple[int, int, memoryview]]
) -> Iterator[tuple[int, int, tuple[int, int, int, int], np.ndarray]]:
    """Decode the segments one after another: the int64 indices ``(3, blocks, n²)`` of a piece at a
    time (:meth:`_Grid.pieces` of :data:`SYNTHESIS_PIXELS`), with its first block, end block and rectangle."""
    grid, pairs, n2 = stream.grid, stream.pairs, stream.header.block_size**2
    channel, coefficient = np.array(pairs, dtype=np.intp).reshape(-1, 2).T
    stream_format = STREAM_FORMATS[stream.header.version]
    previous = np.zeros(3, dtype=np.int64)
    table_of = np.zeros(0, dtype=np.int16)
    for first, end, payload in segments:
        if pairs:
            if table_of.size != len(pairs) * (end - first):
                table_of = np.repeat(np.arange(len(pairs), dtype=np.int16), end - first)
            values = rans_decode(payload, table_of, stream.tables, stream_format).reshape(len(pairs), end - first)
        for piece_first, piece_end, rect in grid.pieces(first, end, SYNTHESIS_PIXELS):
            piece = np.zeros((3, piece_end - piece_first, n2), dtype=np.int64)
            if pairs:
                piece[channel, :, coefficient] = values[:, piece_first - first : piece_end - first]
            previous = _differences_to_dc(piece, previous)
            yield piece_first, piece_end, rect, piece


def _synthesise_piece(
    coefficients: np.ndarray, basis: np.ndarray, grid: _Grid, rect: tuple[int, int, int, int], image: np.ndarray
) -> None:
    """Write the pixels of one piece's blocks from their coefficients ``(3, blocks, n²)`` into ``image``."""
    n = grid.n
    rows, cols = rect[1] - rect[0], rect[3] - rect[2]
    box = grid.box(rect)
    shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
    vectors = coefficients.reshape(-1, n * n) @ basis  # one matrix product: one BLAS call
    planes = [unblockify(plane.reshape(rows, cols, n, n), shape) for plane in np.split(vectors, 3)]
    image[box] = ycbcr_to_rgb(*(np.clip(np.rint(plane + _LEVEL_SHIFT), 0, 255).astype(np.int64) for plane in planes))


# --- checks and evaluation ----------------------------------------------------------------------


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
        raise ImageFormatError(f"expected an (H, W, 3) uint8 image, got shape {image.shape} and dtype {image.dtype}")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageFormatError(f"image has more than {MAX_PIXELS} pixels")
    return image


def _check_step(step: float) -> float:
    step = float(step)
    if not np.isfinite(step) or step <= 0 or np.float32(step) <= 0:
        raise ValueError(f"step must be a positive finite number, got {step}")
    return float(np.float32(step))
