"""nicbook.plot.entropy: the figures of the entropy-coding chapter."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import matplotlib.pyplot as plt
import numpy as np

from nicbook.entropy import HuffmanCode
from nicbook.plot.entropy import (
    arithmetic_coding_frames,
    arithmetic_intervals,
    code_words,
    draw_huffman_tree,
)


def test_code_words_and_tree_labels():
    code = HuffmanCode.from_frequencies([45, 13, 12, 16, 9, 5])
    words = code_words(code)
    assert words == {0: "0", 1: "100", 2: "101", 3: "110", 4: "1110", 5: "1111"}
    ax = draw_huffman_tree(code, list("abcdef"))
    leaf_texts = [t.get_text() for t in ax.texts if "\n" in t.get_text()]
    assert sorted(leaf_texts) == sorted(f"{label}\n{words[s]}" for s, label in enumerate("abcdef"))
    edge_labels = [t.get_text() for t in ax.texts if t.get_text() in ("0", "1")]
    assert len(edge_labels) == 10  # one per edge: 6 leaves + 5 inner nodes - root
    plt.close(ax.figure)


def test_arithmetic_intervals_are_exact_and_nested():
    intervals = arithmetic_intervals([0, 2, 1], [0.5, 0.25, 0.25])
    assert intervals[-1] == (Fraction(7, 16), Fraction(1, 32))  # 0 + 1/2 (3/4 + 1/4 * 1/2)
    for (low, width), (inner_low, inner_width) in pairwise(intervals):
        assert low <= inner_low and inner_low + inner_width <= low + width
    frames, titles = arithmetic_coding_frames([0, 1], [0.6, 0.4], ["a", "b"])
    assert len(frames) == len(titles) == 3
    assert frames[0].ndim == 3 and frames[0].dtype == np.uint8
