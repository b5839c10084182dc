"""nicbook.plot: the book's RD plot keeps its legend off the curves and tells codec modes apart."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from nicbook import plot  # noqa: E402


def curves(count: int) -> dict:
    names = ["nicbook (factorized)", "nicbook (factorized, model tables)", "JPEG", "WebP", "AVIF"][:count]
    return {name: ([0.2, 0.5, 1.0], [28.0 + k, 31.0 + k, 34.0 + k]) for k, name in enumerate(names)}


def test_many_curves_put_the_legend_beside_the_axes():
    ax = plot.rd_plot(curves(5))
    figure = ax.figure
    figure.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # nothing of the legend over the plot
    assert [text.get_text() for text in ax.get_legend().get_texts()][:2] == list(curves(2))
    plt.close(figure)


def test_a_few_curves_keep_the_legend_inside_and_the_two_nicbook_modes_differ_in_line_style():
    ax = plot.rd_plot(curves(2))
    ax.figure.canvas.draw()
    assert ax.get_window_extent().contains(*ax.get_legend().get_window_extent().p0)
    own, model_tables = ax.get_lines()[:2]
    assert own.get_color() == model_tables.get_color() and own.get_linestyle() != model_tables.get_linestyle()
    plt.close(ax.figure)
