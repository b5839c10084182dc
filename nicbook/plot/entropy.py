"""Figures for the entropy-coding chapter: Huffman code trees and arithmetic-coding intervals."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
from numpy.typing import ArrayLike

from nicbook.entropy.huffman import HuffmanCode
from nicbook.plot import use_style


def code_words(code: HuffmanCode) -> dict[int, str]:
    """``{symbol: code as a string of 0s and 1s}`` for every symbol that has a code."""
    return {
        int(symbol): format(int(code.codes[symbol]), f"0{int(code.lengths[symbol])}b")
        for symbol in np.flatnonzero(code.lengths)
    }


def draw_huffman_tree(
    code: HuffmanCode,
    labels: Sequence[str] | None = None,
    frequencies: ArrayLike | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Draw the binary tree of a prefix code: left edges are 0, right edges 1, leaves are symbols.

    Leaves show the symbol's label, its code word and (if given) its frequency.
    """
    use_style()
    words = code_words(code)
    if not words:
        raise ValueError("the code has no symbols to draw")
    if ax is None:
        width = max(4.0, 0.9 * len(words))
        _, ax = plt.subplots(figsize=(width, 0.8 * code.max_length + 1.5))
    leaves = sorted(words.items(), key=lambda item: item[1])
    x = {word: float(i) for i, (_, word) in enumerate(leaves)}
    prefixes = sorted({word[:k] for word in words.values() for k in range(len(word))}, key=len, reverse=True)
    for prefix in prefixes:  # deepest first, so children are placed before their parent
        children = [x[prefix + bit] for bit in "01" if prefix + bit in x]
        x[prefix] = float(np.mean(children))
    for node, node_x in x.items():
        if node:
            parent = node[:-1]
            ax.plot([x[parent], node_x], [-len(parent), -len(node)], color="0.4", lw=1.2, zorder=1)
            ax.text(
                (x[parent] + node_x) / 2,
                -len(node) + 0.5,
                node[-1],
                ha="center",
                va="center",
                fontsize=9,
                color="#d62728",
                bbox={"fc": "white", "ec": "none", "pad": 0.5},
            )
    for prefix in prefixes:
        ax.scatter([x[prefix]], [-len(prefix)], s=60, color="#1f77b4", zorder=2)
    for symbol, word in leaves:
        name = labels[symbol] if labels is not None else str(symbol)
        text = f"{name}\n{word}"
        if frequencies is not None:
            text += f"\n({np.asarray(frequencies)[symbol]:g})"
        ax.text(
            x[word],
            -len(word),
            text,
            ha="center",
            va="top",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.3", "fc": "#eef3fb", "ec": "#1f77b4"},
        )
    ax.set_xlim(-0.7, len(leaves) - 0.3)
    ax.set_ylim(-code.max_length - 1.3, 0.5)
    ax.set_axis_off()
    return ax


def arithmetic_intervals(
    symbols: Sequence[int], pmf: Sequence[Fraction | float]
) -> list[tuple[Fraction, Fraction]]:
    """``(low, width)`` of the coding interval before and after each symbol, in exact fractions."""
    probabilities = [Fraction(p) for p in pmf]
    total = sum(probabilities)
    probabilities = [p / total for p in probabilities]
    starts = [sum(probabilities[:k], Fraction(0)) for k in range(len(probabilities))]
    low, width = Fraction(0), Fraction(1)
    intervals = [(low, width)]
    for symbol in symbols:
        low, width = low + width * starts[symbol], width * probabilities[symbol]
        intervals.append((low, width))
    return intervals


def _figure_to_array(figure: plt.Figure) -> np.ndarray:
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return image


def arithmetic_coding_frames(
    symbols: Sequence[int], pmf: Sequence[float], labels: Sequence[str]
) -> tuple[list[np.ndarray], list[str]]:
    """Frames (RGB arrays) and titles showing arithmetic coding narrow ``[0, 1)`` symbol by symbol.

    Each frame shows the whole unit interval with the current interval marked, and below it the
    current interval magnified and split in proportion to ``pmf``, the next symbol's part
    highlighted. Feed the result to :func:`nicbook.plot.animation_html`.
    """
    use_style()
    intervals = arithmetic_intervals(symbols, pmf)
    probabilities = np.asarray(pmf, dtype=float) / np.sum(pmf)
    starts = np.concatenate([[0.0], np.cumsum(probabilities)[:-1]])
    colors = plt.get_cmap("tab10")(np.arange(len(probabilities)) % 10)
    frames, titles = [], []
    for step, (low, width) in enumerate(intervals):
        figure, (top, zoom) = plt.subplots(2, 1, figsize=(7, 2.6), height_ratios=[1, 2])
        top.broken_barh([(0, 1)], (0, 1), color="0.9")
        top.broken_barh([(float(low), max(float(width), 0.004))], (0, 1), color="#d62728")
        top.set_title("the unit interval; red: the current interval", fontsize=9)
        nxt = symbols[step] if step < len(symbols) else None
        for k, (start, p) in enumerate(zip(starts, probabilities)):
            alpha = 1.0 if nxt is None or k == nxt else 0.35
            zoom.broken_barh([(start, p)], (0, 1), color=colors[k], alpha=alpha, ec="white")
            zoom.text(start + p / 2, 0.5, labels[k], ha="center", va="center", fontsize=11)
        zoom.set_xticks([0, 1], [f"{float(low):.6f}", f"{float(low + width):.6f}"])
        zoom.set_title(
            "the current interval, magnified" + (f"; next symbol: {labels[nxt]}" if nxt is not None else ""),
            fontsize=9,
        )
        for ax in (top, zoom):
            ax.set_xlim(0, 1)
            ax.set_yticks([])
            ax.grid(False)
        top.set_xticks([0, 1])
        figure.tight_layout()
        frames.append(_figure_to_array(figure))
        coded = "".join(labels[s] for s in symbols[:step]) or "(nothing)"
        titles.append(
            f"coded {coded}: interval width {float(width):.3g}, {abs(np.log2(float(width))):.2f} bits"
        )
    return frames, titles
