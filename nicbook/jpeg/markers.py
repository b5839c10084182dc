"""JPEG marker codes (ITU-T T.81 Table B.1) and marker-segment framing."""

from __future__ import annotations

import struct

SOI = 0xD8
EOI = 0xD9
SOS = 0xDA
DQT = 0xDB
DNL = 0xDC
DRI = 0xDD
DHT = 0xC4
DAC = 0xCC
APP0 = 0xE0
APP14 = 0xEE
COM = 0xFE
RST0 = 0xD0
SOF_BASELINE = 0xC0
SOF_EXTENDED = 0xC1
#: Frame types we refuse, with the reason given to the user.
SOF_UNSUPPORTED = {
    0xC2: "progressive DCT",
    0xC3: "lossless",
    0xC5: "differential sequential (hierarchical)",
    0xC6: "differential progressive (hierarchical)",
    0xC7: "differential lossless (hierarchical)",
    0xC9: "arithmetic-coded sequential",
    0xCA: "arithmetic-coded progressive",
    0xCB: "arithmetic-coded lossless",
    0xCD: "arithmetic-coded differential sequential",
    0xCE: "arithmetic-coded differential progressive",
    0xCF: "arithmetic-coded differential lossless",
}


def is_restart(marker: int) -> bool:
    """RST0..RST7 carry no length and may only appear inside entropy-coded data."""
    return RST0 <= marker <= RST0 + 7


def segment(marker: int, payload: bytes) -> bytes:
    """A marker segment: ``FF marker``, a 16-bit length that counts itself, then the payload."""
    if len(payload) + 2 > 0xFFFF:
        raise ValueError(f"marker segment too long ({len(payload)} bytes)")
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload
