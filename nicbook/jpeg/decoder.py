"""Baseline sequential JPEG decoder (ITU-T T.81): marker parsing, Huffman decoding, IDCT, colour.

Huffman decoding is inherently sequential. The loop below only walks the codes: a 16-bit
peek indexes a lookup table giving each code's length and symbol, and the loop records
where each coefficient's extra bits start. Reading those bits, DC prediction, dequantization,
IDCT, upsampling and colour conversion then run vectorised over all blocks. The IDCT, the
chroma upsampling and the colour conversion are libjpeg's integer ones, so decoded pixels
are those libjpeg (and Pillow) produce.

Every loop is bounded by the amount of data: a corrupt or truncated file raises
:class:`~nicbook.errors.BitstreamError`, never hangs, and forged image sizes are checked
against the data length before anything is allocated. Images over :data:`MAX_PIXELS` are
refused; the others decode in a few bytes per pixel: 16-bit coefficients, the IDCT a batch of
blocks at a time, upsampling and colour conversion a stripe of rows at a time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from nicbook.errors import BitstreamError, UnsupportedFormatError
from nicbook.jpeg import markers
from nicbook.jpeg.color import upsample, ycbcr_to_rgb
from nicbook.jpeg.islow import idct_islow
from nicbook.jpeg.layout import FrameLayout, mcu_pattern, scan_block_order
from nicbook.jpeg.tables import HuffmanSpec
from nicbook.transforms import unblockify, zigzag_indices

_ZIGZAG = zigzag_indices(8)
_NATURAL = np.argsort(_ZIGZAG)  # natural position j holds zig-zag coefficient _NATURAL[j]
#: Largest image decoded, in pixels: Pillow's limit, above which it calls a file a decompression bomb.
MAX_PIXELS = 178_956_970
#: Blocks dequantized and transformed at a time, and image rows converted at a time: the decoder's
#: working memory stays a few bytes per pixel whatever the image size.
_IDCT_BLOCKS = 1 << 15
_STRIPE_ROWS = 256


@dataclass
class _Component:
    identifier: int
    h: int
    v: int
    table: int
    blocks: np.ndarray | None = None  # decoded samples, (rows, cols, 8, 8) uint8


@dataclass
class _DecoderState:
    quantization: dict[int, np.ndarray] = field(default_factory=dict)
    huffman: dict[tuple[int, int], HuffmanSpec] = field(default_factory=dict)
    components: list[_Component] = field(default_factory=list)
    layout: FrameLayout | None = None
    restart_interval: int = 0
    adobe_transform: int | None = None


def _u16(data: bytes, offset: int) -> int:
    return (data[offset] << 8) | data[offset + 1]


def _parse_dqt(payload: bytes, state: _DecoderState) -> None:
    offset = 0
    while offset < len(payload):
        precision, table_id = payload[offset] >> 4, payload[offset] & 15
        size = 128 if precision else 64
        if precision > 1 or table_id > 3 or offset + 1 + size > len(payload):
            raise BitstreamError("corrupt DQT segment")
        dtype = ">u2" if precision else "u1"
        values = np.frombuffer(payload, dtype=dtype, count=64, offset=offset + 1).astype(np.int64)
        table = np.empty(64, dtype=np.int64)
        table[_ZIGZAG] = values
        state.quantization[table_id] = table
        offset += 1 + size


def _parse_dht(payload: bytes, state: _DecoderState) -> None:
    offset = 0
    while offset < len(payload):
        if offset + 17 > len(payload):
            raise BitstreamError("corrupt DHT segment")
        table_class, table_id = payload[offset] >> 4, payload[offset] & 15
        bits = tuple(payload[offset + 1 : offset + 17])
        count = sum(bits)
        if table_class > 1 or table_id > 3 or offset + 17 + count > len(payload):
            raise BitstreamError("corrupt DHT segment")
        values = tuple(payload[offset + 17 : offset + 17 + count])
        state.huffman[table_class, table_id] = HuffmanSpec(bits, values)
        offset += 17 + count


def _parse_sof(payload: bytes, state: _DecoderState) -> None:
    if state.layout is not None:
        raise BitstreamError("more than one frame header")
    if len(payload) < 6:
        raise BitstreamError("corrupt SOF segment")
    precision, height, width, n_components = struct.unpack(">BHHB", payload[:6])
    if precision != 8:
        raise UnsupportedFormatError(f"{precision}-bit JPEG is not supported: only 8-bit baseline")
    if height == 0:
        raise UnsupportedFormatError("image height defined by a DNL marker is not supported")
    if width == 0 or n_components not in (1, 3) or len(payload) != 6 + 3 * n_components:
        raise UnsupportedFormatError(f"unsupported frame: {n_components} components, width {width}")
    for c in range(n_components):
        identifier, sampling, table = payload[6 + 3 * c : 9 + 3 * c]
        h, v = sampling >> 4, sampling & 15
        if not (1 <= h <= 4 and 1 <= v <= 4) or table > 3:
            raise BitstreamError("corrupt component in SOF segment")
        state.components.append(_Component(identifier, h, v, table))
    if height * width > MAX_PIXELS:
        raise UnsupportedFormatError(
            f"JPEG of {width}×{height} pixels is larger than the decoder's limit of {MAX_PIXELS} pixels"
        )
    layout = FrameLayout(height, width, tuple((c.h, c.v) for c in state.components))
    if any(layout.max_h % c.h or layout.max_v % c.v for c in state.components):
        raise UnsupportedFormatError("sampling factors that do not divide the largest are not supported")
    state.layout = layout


@lru_cache(maxsize=64)
def _lookup_table(spec: HuffmanSpec, ac: bool) -> list[int]:
    """Decoding table indexed by the next 16 bits: ``length | run << 5 | size << 9``; length 0 = invalid.

    For DC tables the symbol is the size of the difference and run is 0. For AC tables a
    size of 0 means EOB (run 0) or ZRL (run 15). Entries are plain ints so that the table is
    a cheap Python list to index.
    """
    lengths = spec.code_lengths()
    starts = spec.codes() << (16 - lengths)
    if np.any(starts + (1 << (16 - lengths)) > 1 << 16):
        raise BitstreamError("Huffman table has codes that do not fit in 16 bits")
    symbols = np.array(spec.values)
    run, size = (symbols >> 4, symbols & 15) if ac else (np.zeros_like(symbols), symbols)
    valid = (size <= 10) | (~ac & (size <= 11))
    if ac:
        valid &= (size > 0) | (run == 0) | (run == 15)
    span = np.where(valid, 1 << (16 - lengths), 0)
    entries = np.zeros(1 << 16, dtype=np.int64)
    index = np.repeat(np.arange(len(symbols)), span)
    positions = np.repeat(starts, span) + np.arange(len(index)) - np.repeat(np.cumsum(span) - span, span)
    entries[positions] = (lengths | run << 5 | size << 9)[index]
    return entries.tolist()


def _scan_data(data: bytes, start: int) -> tuple[np.ndarray, list[int], int]:
    """Entropy-coded bytes from ``start`` up to the next marker, unstuffed, with restart markers removed.

    Returns the bytes, the offsets where each restart interval starts, and the position of
    the marker that ends the scan.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    ff = start + np.flatnonzero(raw[start:-1] == 0xFF)
    following = raw[ff + 1]
    is_marker = (following != 0) & ((following < markers.RST0) | (following > markers.RST0 + 7))
    end = int(ff[np.argmax(is_marker)]) if np.any(is_marker) else len(data)
    inside = ff < end
    ff, following = ff[inside], following[inside]
    restart = (following >= markers.RST0) & (following <= markers.RST0 + 7)
    drop = np.zeros(end - start, dtype=bool)
    drop[ff[following == 0] + 1 - start] = True
    drop[ff[restart] - start] = True
    drop[ff[restart] + 1 - start] = True
    kept_before = np.cumsum(~drop) - ~drop  # kept bytes before each position
    segment_starts = [0] + kept_before[ff[restart] - start].tolist()
    return raw[start:end][~drop], segment_starts, end


def _windows(payload: np.ndarray) -> np.ndarray:
    """Big-endian 64-bit words starting at every byte (zero padded), for reading bits at any position."""
    padded = np.concatenate([payload, np.zeros(8, dtype=np.uint8)]).astype(np.uint64)
    words = np.zeros(len(payload) + 1, dtype=np.uint64)
    for k in range(8):
        words |= padded[k : k + len(words)] << np.uint64(56 - 8 * k)
    return words


def _read_values(words: np.ndarray, position_size: np.ndarray) -> np.ndarray:
    """Signed values of the extra bits at ``position >> 4`` of length ``size = low 4 bits`` (T.81 F.2.2.1)."""
    positions, sizes = position_size >> 4, position_size & 15
    shift = np.clip(64 - (positions & 7) - sizes, 0, 63).astype(np.uint64)
    raw = (words[positions >> 3] >> shift).astype(np.int64) & ((np.int64(1) << sizes) - 1)
    negative = raw < (np.int64(1) << sizes) >> 1
    return np.where(negative & (sizes > 0), raw - (np.int64(1) << sizes) + 1, raw)


def _huffman_walk(words: list[int], start_bits: list[int], end_bits: list[int], mcus_per_segment: list[int], tables):
    """Walk the codes of every block; returns DC ``(pos << 4 | size)``, AC flat indices and AC ``(pos << 4 | size)``."""
    dc_records: list[int] = []
    ac_index: list[int] = []
    ac_records: list[int] = []
    dc_append, index_append, ac_append = dc_records.append, ac_index.append, ac_records.append
    block = 0
    try:
        for pos, end, n_mcus in zip(start_bits, end_bits, mcus_per_segment, strict=True):
            for _ in range(n_mcus):
                for dc_table, ac_table in tables:
                    entry = dc_table[(words[pos >> 3] >> (48 - (pos & 7))) & 0xFFFF]
                    if not entry:
                        raise BitstreamError(f"invalid DC Huffman code in block {block}")
                    pos += entry & 31
                    size = entry >> 9
                    dc_append((pos << 4) | size)
                    pos += size
                    k = 1
                    base = block << 6
                    while k < 64:
                        entry = ac_table[(words[pos >> 3] >> (48 - (pos & 7))) & 0xFFFF]
                        pos += entry & 31
                        size = entry >> 9
                        if size:
                            k += (entry >> 5) & 15
                            index_append(base + k)
                            ac_append((pos << 4) | size)
                            pos += size
                            k += 1
                        elif entry >> 5 == 15:
                            k += 16
                        elif entry:
                            break
                        else:
                            raise BitstreamError(f"invalid AC Huffman code in block {block}")
                    if k > 64:
                        raise BitstreamError(f"AC coefficients run past the end of block {block}")
                    block += 1
            if pos > end:
                raise BitstreamError("entropy-coded data is truncated")
    except IndexError:
        raise BitstreamError("entropy-coded data is truncated") from None
    return (
        np.array(dc_records, dtype=np.int64),
        np.array(ac_index, dtype=np.int64),
        np.array(ac_records, dtype=np.int64),
    )


def _dc_values(differences: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Undo DC prediction of one component: running sums that restart at each restart interval."""
    sums = np.cumsum(differences)
    starts = np.r_[True, segments[1:] != segments[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(segments)), 0))
    return sums - sums[first] + differences[first]


def _decode_scan(data: bytes, offset: int, header: bytes, state: _DecoderState) -> int:
    """Decode one scan whose SOS header is ``header`` and data starts at ``offset``; returns the offset after it."""
    layout = state.layout
    if layout is None:
        raise BitstreamError("scan before the frame header")
    if len(header) < 4 or len(header) != 4 + 2 * header[0] or not 1 <= header[0] <= 4:
        raise BitstreamError("corrupt SOS segment")
    identifiers = [c.identifier for c in state.components]
    components, tables = [], {}
    for i in range(header[0]):
        identifier, selectors = header[1 + 2 * i], header[2 + 2 * i]
        if identifier not in identifiers:
            raise BitstreamError(f"scan refers to unknown component {identifier}")
        c = identifiers.index(identifier)
        components.append(c)
        try:
            dc_spec, ac_spec = state.huffman[0, selectors >> 4], state.huffman[1, selectors & 15]
        except KeyError:
            raise BitstreamError("scan uses an undefined Huffman table") from None
        tables[c] = (_lookup_table(dc_spec, False), _lookup_table(ac_spec, True))
    if tuple(header[-3:]) != (0, 63, 0):
        raise UnsupportedFormatError("spectral selection or successive approximation: not a baseline scan")

    payload, segment_starts, end = _scan_data(data, offset)
    n_blocks = layout.total_blocks(components)
    if 2 * n_blocks > 8 * len(payload) + 16:  # every block takes at least two bits (DC and EOB)
        raise BitstreamError("entropy-coded data is truncated or the image size is corrupt")
    pattern = mcu_pattern(layout, components)
    n_mcus = n_blocks // len(pattern)
    interval = state.restart_interval or n_mcus
    n_segments = -(-n_mcus // interval)
    if len(segment_starts) < n_segments:
        raise BitstreamError("restart markers are missing: the data is truncated or corrupt")
    bounds = [8 * s for s in segment_starts[:n_segments]] + [8 * len(payload)]
    mcus = [interval] * (n_segments - 1) + [n_mcus - interval * (n_segments - 1)]
    words = _windows(payload)
    dc_records, ac_index, ac_records = _huffman_walk(
        words.tolist(), bounds[:-1], bounds[1:], mcus, [tables[int(c)] for c in pattern]
    )

    block_component = np.tile(pattern, n_mcus)
    block_segment = np.arange(n_blocks) // len(pattern) // interval
    coefficients = np.zeros((n_blocks, 64), dtype=np.int16)  # 16 bits, as libjpeg keeps them
    coefficients.ravel()[ac_index] = _read_values(words, ac_records)
    differences = _read_values(words, dc_records)
    for c in components:
        mask = block_component == c
        coefficients[mask, 0] = _dc_values(differences[mask], block_segment[mask])

    order, rows, cols = scan_block_order(layout, components)
    for c in components:
        table_id = state.components[c].table
        if table_id not in state.quantization:
            raise BitstreamError(f"component {c} uses undefined quantization table {table_id}")
        quantization = state.quantization[table_id]
        blocks = np.flatnonzero(order == c)
        grid = np.zeros((*layout.mcu_blocks(c), 8, 8), dtype=np.uint8)
        for first in range(0, blocks.size, _IDCT_BLOCKS):
            chunk = blocks[first : first + _IDCT_BLOCKS]
            natural = coefficients[chunk][:, _NATURAL].astype(np.int64) * quantization
            grid[rows[chunk], cols[chunk]] = idct_islow(natural.reshape(-1, 8, 8))
        state.components[c].blocks = grid
    return end


def _assemble(state: _DecoderState) -> np.ndarray:
    """The RGB image, upsampled and colour-converted a stripe of rows at a time."""
    layout = state.layout
    if layout is None or any(c.blocks is None for c in state.components):
        raise BitstreamError("the file ends before all image data was decoded")
    planes = []
    for c, component in enumerate(state.components):
        planes.append(unblockify(component.blocks, layout.component_size(c)))
        component.blocks = None
    rgb_ids = [c.identifier for c in state.components] == [ord("R"), ord("G"), ord("B")]
    image = np.empty((layout.height, layout.width, 3), dtype=np.uint8)
    for top in range(0, layout.height, _STRIPE_ROWS):
        bottom = min(top + _STRIPE_ROWS, layout.height)
        stripe = [_upsampled_rows(plane, state.components[c], layout, top, bottom) for c, plane in enumerate(planes)]
        if len(stripe) == 1:
            image[top:bottom] = stripe[0][..., None]
        elif state.adobe_transform == 0 or rgb_ids:
            image[top:bottom] = np.stack(stripe, axis=-1)
        else:
            image[top:bottom] = ycbcr_to_rgb(*stripe)
    return image


def _upsampled_rows(plane: np.ndarray, component: _Component, layout: FrameLayout, top: int, bottom: int) -> np.ndarray:
    """Image rows ``top .. bottom - 1`` of a component plane upsampled to full resolution.

    The triangle filters read one neighbouring row on each side, so the plane's rows are taken
    with one more on each side (the plane's own edges are replicated, as for the whole plane).
    """
    factor_y, factor_x = layout.max_v // component.v, layout.max_h // component.h
    first = max(top // factor_y - 1, 0)
    last = min(-(-bottom // factor_y) + 1, plane.shape[0])
    rows = upsample(plane[first:last], factor_y, factor_x)
    return rows[top - first * factor_y : bottom - first * factor_y, : layout.width]


def decode(data: bytes) -> np.ndarray:
    """Decode a baseline JPEG file to an ``(H, W, 3)`` uint8 RGB image.

    Reads any baseline sampling factors (4:4:4, 4:2:2, 4:2:0, ...), one or three components,
    restart intervals, and skips APPn/COM segments. Grey (one-component) images are
    returned with the grey value replicated into three channels, so every result is RGB.
    Progressive, arithmetic-coded, lossless, hierarchical and 12-bit files raise
    :class:`~nicbook.errors.UnsupportedFormatError`; corrupt or truncated ones
    :class:`~nicbook.errors.BitstreamError`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"JPEG data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if data[:2] != b"\xff\xd8":
        raise BitstreamError("not a JPEG file: it does not start with an SOI marker")
    state = _DecoderState()
    offset = 2
    while True:
        if offset >= len(data) or data[offset] != 0xFF:
            if offset >= len(data) and state.layout is not None:
                raise BitstreamError("JPEG data is truncated: no EOI marker")
            raise BitstreamError(f"corrupt JPEG: expected a marker at byte {offset}")
        while offset < len(data) and data[offset] == 0xFF:  # fill bytes may precede a marker
            offset += 1
        if offset >= len(data):
            raise BitstreamError("JPEG data is truncated: no EOI marker")
        marker = data[offset]
        offset += 1
        if marker == markers.EOI:
            break
        if markers.is_restart(marker) or marker == 0x01:  # stand-alone markers without a length
            continue
        if marker in (0x00, markers.SOI) or offset + 2 > len(data):
            raise BitstreamError(f"corrupt JPEG: unexpected marker 0x{marker:02X} at byte {offset - 1}")
        length = _u16(data, offset)
        if length < 2 or offset + length > len(data):
            raise BitstreamError(f"JPEG data is truncated or corrupt in the segment of marker 0x{marker:02X}")
        payload = data[offset + 2 : offset + length]
        offset += length
        if marker in (markers.SOF_BASELINE, markers.SOF_EXTENDED):
            _parse_sof(payload, state)
        elif marker in markers.SOF_UNSUPPORTED:
            raise UnsupportedFormatError(
                f"{markers.SOF_UNSUPPORTED[marker]} JPEG is not supported: nicbook decodes baseline "
                "(sequential, Huffman-coded, 8-bit) files only"
            )
        elif marker == markers.DAC:
            raise UnsupportedFormatError("arithmetic-coded JPEG is not supported")
        elif marker == markers.DNL:
            raise UnsupportedFormatError("DNL markers (image height after the scan) are not supported")
        elif marker == markers.DQT:
            _parse_dqt(payload, state)
        elif marker == markers.DHT:
            _parse_dht(payload, state)
        elif marker == markers.DRI:
            if len(payload) != 2:
                raise BitstreamError("corrupt DRI segment")
            state.restart_interval = _u16(payload, 0)
        elif marker == markers.APP14 and payload[:5] == b"Adobe" and len(payload) >= 12:
            state.adobe_transform = payload[11]
        elif marker == markers.SOS:
            offset = _decode_scan(data, offset, payload, state)
    return _assemble(state)
