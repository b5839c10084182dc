"""Coding a factorized model's integer latents with its own tables, one table per channel.

This is the static coder of format version 5 (1 with the rANS coder's format 1). Like every
latent decoder, it first checks that the payload is not shorter than its symbols' least
possible information (:func:`nicbook.entropy.rans.check_capacity`), before allocating anything.
"""

from __future__ import annotations

import numpy as np

from nicbook.entropy import FrequencyTables, rans_decode, rans_encode
from nicbook.entropy.rans import STREAM_FORMAT, check_capacity
from nicbook.errors import BitstreamError

__all__ = ["channel_indices", "decode", "encode"]


def channel_indices(shape: tuple[int, int, int]) -> np.ndarray:
    """The table (= channel) of every symbol of a latent block ``(C, h, w)`` in C order."""
    channels, height, width = shape
    return np.repeat(np.arange(channels, dtype=np.int64), height * width)


def encode(symbols: np.ndarray, tables: FrequencyTables) -> bytes:
    """rANS-code integer latents ``(C, h, w)`` with the per-channel ``tables``."""
    return rans_encode(symbols.reshape(-1), channel_indices(symbols.shape), tables)


def decode(
    payload: bytes, shape: tuple[int, int, int], tables: FrequencyTables, stream_format: int = STREAM_FORMAT
) -> np.ndarray:
    """Inverse of :func:`encode`: the integer latents ``(C, h, w)`` (``stream_format``: the rANS
    stream's, 1 in files of version 1)."""
    channels, height, width = shape
    if channels != tables.num_tables:
        raise BitstreamError(f"{channels} latent channels but the model has {tables.num_tables} tables")
    check_capacity(len(payload), np.full(channels, height * width), tables, f"{shape} latents")
    values = rans_decode(payload, channel_indices(shape), tables, stream_format)
    return np.asarray(values, dtype=np.int64).reshape(shape)
