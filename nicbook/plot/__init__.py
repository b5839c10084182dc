"""One visual style for the book: image grids with zoomed crops, RD plots, and animations.

Every chapter draws through these functions, so images, codecs' colours and axes look the same
throughout the book. Animations are rendered to self-contained HTML/JavaScript
(:func:`animation_html`) so they play in the static site as well as in a live notebook.

The figures of single chapters live beside it: :mod:`nicbook.plot.entropy` (code trees and
arithmetic-coding intervals), :mod:`nicbook.plot.jpeg` (JPEG's intermediate stages) and
:mod:`nicbook.plot.neural` (training curves, latents, learned densities), and
:mod:`nicbook.plot.viewer` builds the chapters' sliders (ipywidgets, imported only when used).
All of nicbook's matplotlib code is in this subpackage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation
from matplotlib.patches import Rectangle

#: A crop as ``(top, left, height, width)`` in pixels.
Crop = tuple[int, int, int, int]

#: Fixed colours for the codecs that recur across chapters; others take the default cycle.
CODEC_COLORS: Mapping[str, str] = {
    "JPEG": "#1f77b4",
    "JPEG (Pillow)": "#1f77b4",
    "JPEG (nicbook)": "#6baed6",
    "WebP": "#2ca02c",
    "JPEG 2000": "#9467bd",
    "AVIF": "#8c564b",
    "DCT coder": "#ff7f0e",
    "KLT coder": "#d62728",
    "nicbook (factorized)": "#c51b7d",
    "nicbook (factorized, model tables)": "#c51b7d",
    "nicbook (hyperprior)": "#17becf",
    "nicbook (mean-scale)": "#111111",
}
#: Line styles where a colour is shared: the same codec in another mode.
CODEC_LINESTYLES: Mapping[str, str] = {"nicbook (factorized, model tables)": "--"}

_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "image.interpolation": "nearest",
    "animation.embed_limit": 40.0,
}


def use_style() -> None:
    """Apply the book's matplotlib settings (idempotent)."""
    mpl.rcParams.update(_STYLE)


def _as_displayable(image: np.ndarray) -> tuple[np.ndarray, dict]:
    image = np.asarray(image)
    if image.ndim == 2:
        return image, {"cmap": "gray", "vmin": 0, "vmax": 255 if image.dtype == np.uint8 else None}
    return image, {}


def show_image(ax: plt.Axes, image: np.ndarray, title: str | None = None) -> None:
    """Draw one image (RGB or gray) on ``ax`` without axes decoration."""
    image, options = _as_displayable(image)
    ax.imshow(image, **options)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    crop: Crop | None = None,
    columns: int | None = None,
    size: float = 3.2,
) -> plt.Figure:
    """Show images side by side; with ``crop`` a second row shows the same region of each, enlarged.

    A rectangle on each full image marks the cropped region, so a reader compares artefacts where
    they are visible.
    """
    use_style()
    if len(images) == 0:
        raise ValueError("image_grid needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError("titles must match images one to one")
    count = len(images)
    columns = min(columns or count, count)
    blocks = -(-count // columns)
    rows_per_block = 2 if crop else 1
    aspect = images[0].shape[0] / images[0].shape[1]
    figure, axes = plt.subplots(
        blocks * rows_per_block,
        columns,
        figsize=(size * columns, size * aspect * blocks * rows_per_block + 0.4),
        squeeze=False,
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        ax = axes[row * rows_per_block, column]
        ax.set_axis_on()
        show_image(ax, image, titles[index] if titles else None)
        if crop:
            top, left, height, width = crop
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, ec="yellow", lw=1.5))
            zoomed = axes[row * rows_per_block + 1, column]
            zoomed.set_axis_on()
            show_image(zoomed, np.asarray(image)[top : top + height, left : left + width])
    figure.tight_layout()
    return figure


def rd_plot(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    ax: plt.Axes | None = None,
    title: str | None = "Rate–distortion",
    ylabel: str = "PSNR (dB, RGB)",
) -> plt.Axes:
    """Plot ``{name: (bpps, psnrs)}`` as rate–distortion curves (bits per pixel against PSNR).

    With more than three curves the legend goes beside the axes (:func:`rd_legend`), where it
    cannot hide a curve; call :func:`rd_legend` again after adding points of your own.
    """
    use_style()
    outside = len(curves) > 3
    if ax is None:
        _, ax = plt.subplots(figsize=(8.5 if outside else 6, 4.2))
    for name, (rates, qualities) in curves.items():
        order = np.argsort(rates)
        ax.plot(
            np.asarray(rates)[order],
            np.asarray(qualities)[order],
            marker="o",
            markersize=4,
            label=name,
            color=CODEC_COLORS.get(name),
            linestyle=CODEC_LINESTYLES.get(name, "-"),
        )
    ax.set_xlabel("bits per pixel (bpp)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    rd_legend(ax, outside)
    return ax


def rd_legend(ax: plt.Axes, outside: bool = True) -> None:
    """The legend of an RD plot: beside the axes (``outside``) or in the best place inside them."""
    placement = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0)} if outside else {}
    ax.legend(frameon=False, **placement)


#: Text glyphs for the animation buttons, in place of the Font Awesome 4 icons that matplotlib's
#: template loads from a public CDN (the site must work offline).
_BUTTON_GLYPHS = {
    "fa fa-minus": "\u2212",
    "fa fa-fast-backward": "\u00ab",
    "fa fa-step-backward": "\u2039",
    "fa fa-play fa-flip-horizontal": "\u25c0",
    "fa fa-pause": "\u275a\u275a",
    "fa fa-play": "\u25b6",
    "fa fa-step-forward": "\u203a",
    "fa fa-fast-forward": "\u00bb",
    "fa fa-plus": "+",
}
_ICON_LINK = re.compile(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">')


def _offline_controls(html: str) -> str:
    """Replace the animation's CDN icon font with text glyphs."""
    html = _ICON_LINK.sub("", html)
    for icon, glyph in _BUTTON_GLYPHS.items():
        html = html.replace(f'<i class="{icon}"></i>', glyph)
    return html


def animation_html(
    frames: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    interval_ms: int = 600,
    size: float = 4.0,
) -> str:
    """Render a sequence of images (RGB or gray arrays) as an HTML animation with play controls.

    The result is self-contained JavaScript (``FuncAnimation.to_jshtml``, with its buttons drawn as
    text rather than a web font) so the animation plays in the built, static site, offline too;
    display it with ``IPython.display.HTML``.
    """
    use_style()
    if len(frames) == 0:
        raise ValueError("an animation needs at least one frame")
    if titles is not None and len(titles) != len(frames):
        raise ValueError("titles must match frames one to one")
    first, options = _as_displayable(frames[0])
    aspect = first.shape[0] / first.shape[1]
    figure, ax = plt.subplots(figsize=(size, size * aspect + 0.4))
    show_image(ax, frames[0], titles[0] if titles else None)
    artist = ax.images[0]

    def draw(index: int):
        artist.set_data(_as_displayable(frames[index])[0])
        if titles:
            ax.set_title(titles[index])
        return (artist,)

    figure.tight_layout()
    movie = animation.FuncAnimation(figure, draw, frames=len(frames), interval=interval_ms, blit=False)
    html = _offline_controls(movie.to_jshtml(default_mode="loop"))
    plt.close(figure)
    return html


def block_diagram(
    stages: Sequence[str], caption: str | None = None, width: float = 10.0
) -> plt.Figure:
    """Draw a left-to-right chain of boxes joined by arrows (e.g. encoder → channel → decoder)."""
    use_style()
    if not stages:
        raise ValueError("block_diagram needs at least one stage")
    figure, ax = plt.subplots(figsize=(width, 1.6 if caption else 1.2))
    ax.set_axis_off()
    ax.set_xlim(0, len(stages))
    ax.set_ylim(0, 1)
    for index, label in enumerate(stages):
        ax.text(
            index + 0.5,
            0.5,
            label,
            ha="center",
            va="center",
            fontsize=10,
            bbox={"boxstyle": "round,pad=0.5", "fc": "#eef3fb", "ec": "#1f77b4"},
        )
        if index + 1 < len(stages):
            ax.annotate(
                "",
                xy=(index + 1.18, 0.5),
                xytext=(index + 0.82, 0.5),
                arrowprops={"arrowstyle": "->", "lw": 1.5},
            )
    if caption:
        ax.set_title(caption)
    figure.tight_layout()
    return figure


def markdown_table(rows: Sequence[Sequence[object]], headers: Sequence[str], digits: int = 3) -> str:
    """A Markdown table (floats rounded to ``digits``); display it with ``IPython.display.Markdown``."""
    def cell(value: object) -> str:
        if isinstance(value, (float, np.floating)):
            return f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)
