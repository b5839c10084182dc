"""nicbook.codec.container: the .nic header, its checks, and the fingerprint of a model's weights."""

from __future__ import annotations

import struct
import zlib

import pytest
import torch

from nicbook.codec.container import (
    FORMAT_VERSION,
    MAGIC,
    MAX_PIXELS,
    READABLE_VERSIONS,
    check_image_size,
    latent_size,
    pack,
    read_header,
    weights_hash,
)
from nicbook.errors import BitstreamError, NicbookError, UnsupportedFormatError

DIGEST = bytes(range(8))
PAYLOAD = bytes(range(50, 90))


def a_file(version: int = FORMAT_VERSION, size: tuple[int, int] = (80, 96), latent_shape=(12, 5, 6)) -> bytes:
    return pack(version, "factorized-q3", DIGEST, size, latent_shape, PAYLOAD)


def test_the_bytes_follow_the_documented_layout():
    name = b"factorized-q3"
    body = MAGIC + bytes([3, len(name)]) + name + DIGEST + struct.pack(">IIHHHI", 80, 96, 12, 5, 6, len(PAYLOAD))
    assert a_file(3) == body + PAYLOAD + struct.pack(">I", zlib.crc32(body + PAYLOAD))


def test_the_header_reads_back_what_was_packed():
    data = a_file()
    header = read_header(data)
    assert (header.model, header.version, header.weights_hash) == ("factorized-q3", FORMAT_VERSION, DIGEST)
    assert (header.height, header.width, header.latent_shape) == (80, 96, (12, 5, 6))
    assert data[header.payload_offset : header.payload_offset + header.payload_length] == PAYLOAD
    assert header.file_size == len(data)
    assert FORMAT_VERSION in READABLE_VERSIONS and all(read_header(a_file(v)).version == v for v in READABLE_VERSIONS)


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (lambda data: data[:-1], BitstreamError, "truncated"),
        (lambda data: data[:12], BitstreamError, "truncated"),
        (lambda data: data[:45], BitstreamError, "header cut short"),
        (lambda data: data + b"\0", BitstreamError, "trailing"),
        (lambda data: b"garbage!" * 8, BitstreamError, "not a .nic file"),
        (lambda data: b"", BitstreamError, "not a .nic file"),
        (lambda data: data[:40] + bytes([data[40] ^ 0x10]) + data[41:], BitstreamError, "checksum"),
    ],
)
def test_broken_files_raise_clear_errors(mutate, error, message):
    with pytest.raises(error, match=message):
        read_header(mutate(a_file()))


def test_an_unknown_version_is_unsupported_even_with_a_valid_checksum():
    unknown = max(READABLE_VERSIONS) + 1
    with pytest.raises(UnsupportedFormatError, match=f"version {unknown}"):
        read_header(a_file(version=unknown))


@pytest.mark.parametrize(
    ("size", "latent_shape", "message"),
    [
        ((100_000, 100_000), (12, 6250, 6250), "limit"),
        ((0, 96), (12, 0, 6), "limit"),
        ((80, 96), (12, 200, 6), "does not fit"),
        ((80, 96), (0, 5, 6), "does not fit"),
    ],
)
def test_inconsistent_or_oversized_images_are_refused(size, latent_shape, message):
    with pytest.raises(BitstreamError, match=message):
        read_header(a_file(size=size, latent_shape=latent_shape))


def test_latent_size_and_the_image_size_limit():
    assert [latent_size(side) for side in (1, 15, 16, 17, 32, 33)] == [1, 1, 1, 2, 2, 3]
    check_image_size(4096, MAX_PIXELS // 4096)
    with pytest.raises(NicbookError, match="limit"):
        check_image_size(4096, MAX_PIXELS // 4096 + 1)


def test_the_weights_hash_tells_models_apart_by_their_numbers_alone(tiny_model):
    model, twin, other = tiny_model(seed=0), tiny_model(seed=0), tiny_model(seed=1)
    twin.name = "another name"
    assert len(weights_hash(model)) == 8
    assert weights_hash(twin) == weights_hash(model) != weights_hash(other)
    with torch.no_grad():
        twin.synthesis[-1].bias[0] = torch.nextafter(twin.synthesis[-1].bias[0], torch.tensor(1.0))
    assert weights_hash(twin) != weights_hash(model)
