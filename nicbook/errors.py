"""Exceptions raised by nicbook.

Every error that a user can cause (a corrupt file, missing data, an unsupported image) is a
:class:`NicbookError`, so applications and the command line can catch one type and print a
one-line message.
"""

from __future__ import annotations


class NicbookError(Exception):
    """Base class of every error nicbook raises on purpose."""


class BitstreamError(NicbookError, ValueError):
    """A compressed stream is truncated, corrupt, or not in a format this code reads."""


class UnsupportedFormatError(BitstreamError):
    """A well-formed stream that uses a feature nicbook does not implement (e.g. progressive JPEG)."""


class DataNotFoundError(NicbookError, FileNotFoundError):
    """A data set or file is missing; the message says how to get it."""


class ChecksumError(NicbookError):
    """A downloaded or cached file does not match its published SHA-256 checksum."""


class ImageFormatError(NicbookError, ValueError):
    """An image array or file cannot be interpreted as an 8-bit RGB picture."""
