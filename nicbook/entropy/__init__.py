"""Entropy coding: measuring information and writing it down in (close to) that many bits.

- :mod:`~nicbook.entropy.information`: information content, entropy, cross-entropy.
- :mod:`~nicbook.entropy.pmf`: float PMFs to integer frequency tables (:class:`FrequencyTables`).
- :mod:`~nicbook.entropy.bits`: MSB-first bit writer and reader.
- :mod:`~nicbook.entropy.huffman`: canonical, length-limited Huffman codes.
- :mod:`~nicbook.entropy.rans`: a vectorised, interleaved rANS coder with escape codes.
"""

from __future__ import annotations

from nicbook.entropy.bits import BitReader, BitWriter, decode_uvarint, encode_uvarint, pack_bits
from nicbook.entropy.huffman import HuffmanCode, canonical_codes, huffman_code_lengths
from nicbook.entropy.information import cross_entropy, empirical_entropy, entropy, information_content
from nicbook.entropy.pmf import FrequencyTables, quantize_pmf
from nicbook.entropy.rans import lane_count, rans_decode, rans_encode

__all__ = [
    "BitReader",
    "BitWriter",
    "FrequencyTables",
    "HuffmanCode",
    "canonical_codes",
    "cross_entropy",
    "decode_uvarint",
    "empirical_entropy",
    "encode_uvarint",
    "entropy",
    "huffman_code_lengths",
    "information_content",
    "lane_count",
    "pack_bits",
    "quantize_pmf",
    "rans_decode",
    "rans_encode",
]
