"""Figures of the neural chapters: training curves, latent histograms, learned densities, side information,
a hyperprior's scale maps.

The chapters train tiny models for a minute with :func:`nicbook.nn.training.fit` and read their
logs with :func:`nicbook.nn.checkpoints.read_training_log`; these functions draw what they show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from nicbook.codec import adaptive
from nicbook.codec.hyperprior import HyperLatents
from nicbook.nn.models import STRIDE, FactorizedPrior, ScaleHyperprior
from nicbook.plot import use_style

__all__ = [
    "plot_density_vs_histogram",
    "plot_histories",
    "plot_latent_histograms",
    "plot_scale_maps",
    "plot_side_information",
]

#: Quantities of a training record, with the axis label each is plotted with.
CURVE_LABELS: Mapping[str, str] = {
    "loss": "loss R + λ·D",
    "bpp": "rate (bits per pixel)",
    "mse": "MSE (0–255 scale)",
    "psnr": "PSNR (dB)",
}


def plot_histories(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    keys: Sequence[str] = ("loss", "bpp", "psnr"),
    log_scale: Sequence[str] = ("loss",),
) -> plt.Figure:
    """Training curves: one panel per quantity in ``keys``, one line per named history."""
    use_style()
    figure, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.0), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, history in histories.items():
            ax.plot([r["step"] for r in history], [r[key] for r in history], label=name)
        ax.set(xlabel="training step", title=CURVE_LABELS.get(key, key))
        if key in log_scale:
            ax.set_yscale("log")
    if len(histories) > 1:
        axes[0, -1].legend()
    figure.tight_layout()
    return figure


def plot_latent_histograms(
    latents: np.ndarray, channels: Sequence[int], bins: int = 60, ax: plt.Axes | None = None
) -> plt.Axes:
    """Histograms of the real-valued latents ``(M, h, w)`` of a few ``channels``, overlaid."""
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    values = np.asarray(latents, dtype=np.float64)
    edges = np.linspace(values[list(channels)].min(), values[list(channels)].max(), bins + 1)
    for channel in channels:
        ax.hist(values[channel].ravel(), bins=edges, histtype="step", lw=1.5, density=True,
                label=f"channel {channel}")
    ax.set(xlabel="latent value", ylabel="density")
    ax.legend()
    return ax


@torch.no_grad()
def plot_density_vs_histogram(
    model: FactorizedPrior, symbols: np.ndarray, channel: int, ax: plt.Axes | None = None
) -> plt.Axes:
    """The learned probabilities ``P(k)`` of one channel's integer latents against their frequencies.

    ``symbols`` are integer latents ``(M, h, w)`` as from :meth:`~nicbook.nn.entropy_models.FactorizedEntropyModel.to_symbols`
    (offsets from the channel medians); bars are the observed frequencies, dots the model's
    probabilities, whose ``-log2`` is what each symbol costs.
    """
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    values = symbols[channel].ravel()
    grid = np.arange(values.min() - 2, values.max() + 3)
    counts = np.array([(values == k).sum() for k in grid])
    entropy_model = model.entropy_model
    entropy_model.ensure_tables()
    median = entropy_model.medians[channel]
    points = torch.zeros(1, entropy_model.channels, 1, grid.size, device=median.device)
    points[0, channel, 0] = torch.from_numpy(grid).to(median.device, torch.float32) + median
    probabilities = entropy_model.likelihood(points)[0, channel, 0]
    ax.bar(grid, counts / counts.sum(), width=0.8, alpha=0.5, label="frequency of rounded latents")
    ax.plot(grid, probabilities.cpu().numpy(), "o-", color="C3", ms=4, label="learned P(k)")
    ax.set(xlabel=f"integer latent k (channel {channel}, median {float(median):+.2f} removed)",
           ylabel="probability")
    ax.legend()
    return ax


def plot_side_information(
    image: np.ndarray,
    choice: adaptive.ScaleChoice,
    latent_shape: Sequence[int],
    image_name: str = "",
    model_name: str = "",
) -> plt.Figure:
    """What the adaptive encoder sends about one image: four panels side by side.

    The image; the factor ``a_b`` of each block (:attr:`~nicbook.codec.adaptive.ScaleChoice.shifts`
    laid out over the image); how many channels took each scale ``s_c``; and how many each gain
    ``g_c``. ``choice`` is :func:`nicbook.codec.adaptive.choose_scales` of the image's latents,
    whose ``(..., h, w)`` shape ``latent_shape`` gives.
    """
    use_style()
    rows = -(-int(latent_shape[-2]) // choice.block)
    shift_map = np.asarray(choice.shifts).reshape(rows, -1)
    figure, (left, middle, right, far_right) = plt.subplots(
        1, 4, figsize=(14, 3.4), width_ratios=(1, 1.15, 0.8, 0.5), layout="constrained")
    left.imshow(image)
    left.set(title=image_name, xticks=[], yticks=[])
    moves = np.arange(-adaptive.MAX_SHIFT, adaptive.MAX_SHIFT + 1)
    shown = middle.imshow(shift_map, cmap="viridis", vmin=moves[0] - 0.5, vmax=moves[-1] + 0.5)
    bar = figure.colorbar(shown, ax=middle, ticks=moves, label="block factor $a_b$")
    bar.ax.set_yticklabels([f"{2 ** (move / 2):.2g}" for move in moves])
    pixels = STRIDE * choice.block
    middle.set(title=f"factor of each {pixels}×{pixels}-pixel block", xticks=[], yticks=[])
    levels, gains = adaptive.LEVELS, len(adaptive.GAINS)
    labels = ["idle", *(f"{s:g}" for s in adaptive.SCALES)]
    right.bar(range(levels), np.bincount(choice.levels, minlength=levels))
    right.set(xticks=range(levels)[::2], xticklabels=labels[::2],
              xlabel="channel scale $s_c$", ylabel="channels", title=f"{model_name}: channel scales")
    far_right.bar(range(gains), np.bincount(choice.gains, minlength=gains))
    far_right.set(xticks=range(gains), xticklabels=[f"{g:g}" for g in adaptive.GAINS],
                  xlabel="channel gain $g_c$", title="gains")
    return figure


def plot_scale_maps(
    image: np.ndarray, latents: HyperLatents, model: ScaleHyperprior, channel: int | None = None
) -> plt.Figure:
    """What a hyperprior file tells the decoder about one latent channel, as maps over the image.

    Panels: the image; the channel's decoded latents ``ŷ``; the means ``μ`` predicted for it (the
    mean-scale model only); the scale ``σ`` of the table each latent was coded with; and the bits
    every position cost, summed over all channels. ``channel`` defaults to the channel that cost
    the most bits.
    """
    use_style()
    tables = model.conditional.tables
    bits = tables.information_bits(latents.symbols.ravel(), latents.table_indices.ravel())
    bits = bits.reshape(latents.symbols.shape)
    if channel is None:
        channel = int(np.argmax(bits.sum(axis=(1, 2))))
    scales = model.conditional.scale_levels.numpy()[latents.table_indices[channel]]
    values = latents.latents()[channel].numpy()
    panels = [(values, f"latents ŷ of channel {channel}", "coolwarm", True)]
    if latents.means is not None:
        panels.append((latents.means[channel].numpy(), "predicted means μ", "coolwarm", True))
    panels += [
        (scales, "predicted scales σ (table of each latent)", "magma", False),
        (bits.sum(axis=0), "bits at each position, all channels", "magma", False),
    ]
    figure, axes = plt.subplots(1, len(panels) + 1, figsize=(3.4 * (len(panels) + 1), 2.9), layout="constrained")
    axes[0].imshow(image)
    axes[0].set(title=model.name or model.architecture, xticks=[], yticks=[])
    for ax, (values_map, title, colours, signed) in zip(axes[1:], panels):
        limit = float(np.abs(values_map).max()) or 1.0
        levels = {"vmin": -limit, "vmax": limit} if signed else {}  # zero in the middle of the colours
        shown = ax.imshow(values_map, cmap=colours, **levels)
        figure.colorbar(shown, ax=ax, shrink=0.8)
        ax.set(title=title, xticks=[], yticks=[])
    return figure
