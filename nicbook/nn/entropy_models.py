"""Entropy models of latents: a learned density per channel, or a Gaussian per latent; their coding tables.

Each channel ``c`` has a non-parametric cumulative distribution ``F_c`` given by a small monotone
network (Ballé et al. 2018, appendix 6.1): a chain of per-channel matrices kept positive through a
softplus, biases, and ``tanh`` factors bounded in (-1, 1), so every layer is increasing in its
input. The probability of a quantized latent ``ŷ`` is the mass of the unit interval around it,

    P(ŷ) = F(ŷ + 1/2) - F(ŷ - 1/2),

which is also the density of the noisy latent ``y + u`` used in training. The rate is
``R = -Σ log2 P(ŷ)`` bits.

Coding needs integer frequency tables. They are built from the trained density in float64 on the
CPU, over each channel's range from the ``tail_mass/2`` to the ``1 - tail_mass/2`` quantile, and
quantized by :func:`nicbook.entropy.FrequencyTables.from_pmfs`; values outside a table's range
are coded through its escape symbol, so every integer latent codes, merely at a higher cost.

Medians and range quantiles are found by bisection on the monotone CDF (a direct search rather
than CompressAI's auxiliary loss): exact to float64 precision, no extra optimiser, and the same
answer every time the tables are rebuilt. The tables live in the module's state dict, so a model
saved with :func:`nicbook.nn.checkpoints.save_checkpoint` or loaded from the zoo codes at once.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nicbook.entropy import FrequencyTables, entropy
from nicbook.nn.ops import lower_bound

__all__ = [
    "GAUSSIAN_SCALES",
    "FactorizedDensity",
    "FactorizedEntropyModel",
    "GaussianConditional",
    "gaussian_table_pmfs",
]

#: Smallest likelihood a latent can get, so that ``-log2`` stays finite.
LIKELIHOOD_BOUND = 1e-9
#: Frequency precision of the integer tables (frequencies sum to ``2**TABLE_PRECISION``).
TABLE_PRECISION = 16
#: Most symbols a table may cover on either side of the median; rarer values use the escape.
MAX_HALF_RANGE = 1024
_TABLE_PREFIX = "table_"


def _tables_in_buffers(module: nn.Module) -> FrequencyTables:
    """The :class:`~nicbook.entropy.FrequencyTables` a module keeps in its ``table_*`` buffers."""
    return FrequencyTables.from_arrays(
        {
            name[len(_TABLE_PREFIX) :]: buffer.cpu().numpy()
            for name, buffer in module.named_buffers(recurse=False)
            if name.startswith(_TABLE_PREFIX)
        }
    )


class FactorizedDensity(nn.Module):
    """Per-channel monotone CDF network with hidden widths ``filters`` (Ballé et al. 2018).

    ``logits_cumulative(v)`` maps values ``v`` of shape ``(C, 1, n)`` to logits of the CDF;
    ``sigmoid`` of them is ``F_c(v)``.
    """

    def __init__(
        self, channels: int, filters: Sequence[int] = (3, 3, 3), init_scale: float = 10.0
    ) -> None:
        super().__init__()
        widths = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(widths) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for layer in range(len(widths) - 1):
            fan_in, fan_out = widths[layer], widths[layer + 1]
            initial = math.log(math.expm1(1.0 / scale / fan_out))
            self.matrices.append(nn.Parameter(torch.full((channels, fan_out, fan_in), initial)))
            self.biases.append(nn.Parameter(torch.empty(channels, fan_out, 1).uniform_(-0.5, 0.5)))
            if layer < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, fan_out, 1)))

    @property
    def channels(self) -> int:
        return self.matrices[0].shape[0]

    def constrained_layers(
        self, dtype: torch.dtype
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """Each layer's positive matrix, bias and bounded factor (``None`` for the last), in ``dtype``."""
        factors = [torch.tanh(factor.to(dtype)) for factor in self.factors]
        return [
            (F.softplus(matrix.to(dtype)), bias.to(dtype), factors[layer] if layer < len(factors) else None)
            for layer, (matrix, bias) in enumerate(zip(self.matrices, self.biases))
        ]

    @staticmethod
    def _apply_layers(layers, values: torch.Tensor) -> torch.Tensor:
        logits = values
        for matrix, bias, factor in layers:
            logits = torch.matmul(matrix, logits) + bias
            if factor is not None:
                logits = logits + factor * torch.tanh(logits)
        return logits

    def logits_cumulative(self, values: torch.Tensor) -> torch.Tensor:
        """CDF logits of ``values`` ``(C, 1, n)``, computed in ``values.dtype``."""
        return self._apply_layers(self.constrained_layers(values.dtype), values)

    def interval_mass(self, values: torch.Tensor) -> torch.Tensor:
        """``F(v + 1/2) - F(v - 1/2)`` for ``values`` ``(C, 1, n)``.

        Both CDF values are taken on the side of the distribution where they are small (the sign
        trick): ``σ(-a) - σ(-b)`` equals ``σ(b) - σ(a)`` but does not cancel to zero in the upper tail.
        """
        lower = self.logits_cumulative(values - 0.5)
        upper = self.logits_cumulative(values + 0.5)
        sign = -torch.sign(lower + upper).detach()
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

    @torch.no_grad()
    def quantiles(
        self, probabilities: Sequence[float], dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Values ``q`` with ``F_c(q) = p`` for every channel and probability: ``(C, len(probabilities))``.

        Bisection on the increasing CDF logits: the bracket doubles until it holds every target,
        then halves until it stops shrinking in ``dtype``.
        """
        device = self.matrices[0].device
        targets = torch.tensor(
            [math.log(p / (1.0 - p)) for p in probabilities], dtype=dtype, device=device
        )
        targets = targets.reshape(1, 1, -1).expand(self.channels, 1, -1)
        layers = self.constrained_layers(dtype)
        low = torch.full_like(targets, -1.0)
        high = torch.full_like(targets, 1.0)
        for _ in range(64):
            too_high = self._apply_layers(layers, low) > targets
            too_low = self._apply_layers(layers, high) < targets
            if not (too_high.any() or too_low.any()):
                break
            low = torch.where(too_high, 2.0 * low, low)
            high = torch.where(too_low, 2.0 * high, high)
        for _ in range(128 if dtype == torch.float64 else 48):
            middle = 0.5 * (low + high)
            below = self._apply_layers(layers, middle) < targets
            new_low, new_high = torch.where(below, middle, low), torch.where(below, high, middle)
            if torch.equal(new_low, low) and torch.equal(new_high, high):
                break  # a fixed point: further halvings change nothing in this dtype
            low, high = new_low, new_high
        return (0.5 * (low + high)).squeeze(1)


class FactorizedEntropyModel(nn.Module):
    """Rate of latents under :class:`FactorizedDensity`, plus the integer tables that code them.

    Buffers (all in the state dict): ``medians`` ``(C,)``, the value each channel's integer grid
    is centred on, and the frequency tables (``table_*``), rebuilt by :meth:`update_tables`.
    """

    def __init__(
        self, channels: int, tail_mass: float = 1e-9, filters: Sequence[int] = (3, 3, 3)
    ) -> None:
        super().__init__()
        self.tail_mass = tail_mass
        self.density = FactorizedDensity(channels, filters)
        self.register_buffer("medians", torch.zeros(channels))
        self._tables = None
        self.tables_stale = True

    @property
    def channels(self) -> int:
        return self.density.channels

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """Probability of each (noisy or rounded) latent in ``y`` ``(B, C, H, W)``, bounded below by 1e-9."""
        if self.training and torch.is_grad_enabled():
            self.tables_stale = True
        batch, channels = y.shape[:2]
        values = y.transpose(0, 1).reshape(channels, 1, -1)
        mass = self.density.interval_mass(values.float())
        mass = lower_bound(mass, LIKELIHOOD_BOUND)
        return mass.reshape(channels, batch, *y.shape[2:]).transpose(0, 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.likelihood(y)

    # ------------------------------------------------------------------ latents and symbols

    @torch.no_grad()
    def to_symbols(self, y: torch.Tensor) -> np.ndarray:
        """The integers a coder writes for latents ``y`` ``(..., C, h, w)``: ``round(y - median)`` as int64.

        Symbol ``k`` of channel ``c`` stands for the latent ``k + medians[c]``
        (:meth:`from_symbols`); the tables are rebuilt first if training changed the density.
        """
        self.ensure_tables()
        medians = self.medians.to(y.device, y.dtype).reshape(-1, 1, 1)
        return torch.round(y - medians).to(torch.int64).cpu().numpy()

    def from_symbols(
        self, symbols: np.ndarray, dtype: torch.dtype = torch.float32, device: torch.device | None = None
    ) -> torch.Tensor:
        """The latents ``symbols + median`` of integer symbols ``(..., C, h, w)``, in ``dtype`` on ``device``."""
        self.ensure_tables()
        device = self.medians.device if device is None else device
        medians = self.medians.to(device, dtype).reshape(-1, 1, 1)
        return torch.from_numpy(np.asarray(symbols)).to(device, dtype) + medians

    @torch.no_grad()
    def channel_bits(self, symbols: np.ndarray) -> np.ndarray:
        """``-Σ log2 P`` of one image's integer latents ``(C, h, w)`` per channel, ``(C,)`` float64.

        The rate the model's density assigns (what the integer tables approach); summed over
        channels it is the image's estimated latent bits.
        """
        likelihoods = self.likelihood(self.from_symbols(symbols).unsqueeze(0))[0]
        return (-torch.log2(likelihoods)).double().sum(dim=(1, 2)).cpu().numpy()

    @torch.no_grad()
    def current_medians(self) -> torch.Tensor:
        """Per-channel medians of the density as it is now (float32, on the model's device)."""
        return self.density.quantiles([0.5], dtype=torch.float32)[:, 0]

    # ------------------------------------------------------------------ coding tables

    @torch.no_grad()
    def table_pmfs(self) -> tuple[list[np.ndarray], np.ndarray, torch.Tensor]:
        """Float64 PMFs over each channel's integer range, their first symbols, and the medians.

        Computed on the CPU in float64 from the current density, so the same weights always give the
        same numbers. Symbol ``k`` of channel ``c`` stands for the latent value ``k + medians[c]``.
        """
        density = copy.deepcopy(self.density).to("cpu", torch.float64)
        bounds = density.quantiles([self.tail_mass / 2, 0.5, 1 - self.tail_mass / 2])
        medians = bounds[:, 1].float()
        centre = medians.double()
        first = torch.clamp(torch.floor(bounds[:, 0] - centre), -MAX_HALF_RANGE, 0).long()
        last = torch.clamp(torch.ceil(bounds[:, 2] - centre), 0, MAX_HALF_RANGE).long()
        low = int(first.min())
        symbols = torch.arange(low, int(last.max()) + 1, dtype=torch.float64)
        mass = density.interval_mass(symbols.reshape(1, 1, -1) + centre.reshape(-1, 1, 1))[:, 0]
        pmfs = [
            mass[channel, int(first[channel]) - low : int(last[channel]) - low + 1].numpy()
            for channel in range(density.channels)
        ]
        return pmfs, first.numpy(), medians

    @torch.no_grad()
    def channel_entropies(self) -> torch.Tensor:
        """Entropy in bits of each channel's quantized latent under its own density, ``(C,)`` float64.

        The rate a channel costs per latent when the data follow the model; near zero for a
        channel the model has stopped using (its latent always rounds to the median).
        """
        pmfs, _, _ = self.table_pmfs()
        return torch.tensor([entropy(pmf) for pmf in pmfs], dtype=torch.float64)

    @torch.no_grad()
    def update_tables(self) -> None:
        """Rebuild medians and integer tables from the current density (deterministic, CPU float64)."""
        pmfs, offsets, medians = self.table_pmfs()
        tables = FrequencyTables.from_pmfs(pmfs, offsets, precision=TABLE_PRECISION)
        self.medians.copy_(medians.to(self.medians.device))
        self._drop_table_buffers()
        for key, array in tables.to_arrays().items():
            buffer = torch.from_numpy(np.array(array, dtype=np.int64)).to(self.medians.device)
            self.register_buffer(_TABLE_PREFIX + key, buffer)
        self._tables = tables
        self.tables_stale = False

    @property
    def tables(self) -> FrequencyTables:
        """The :class:`nicbook.entropy.FrequencyTables` in the buffers (rebuilt first if stale)."""
        if self.tables_stale:
            self.update_tables()
        if self._tables is None:
            self._tables = _tables_in_buffers(self)
        return self._tables

    @staticmethod
    def update_all(model: nn.Module) -> None:
        """Rebuild the tables of every factorized entropy model inside ``model`` (before saving it)."""
        for module in model.modules():
            if isinstance(module, FactorizedEntropyModel):
                module.update_tables()

    def ensure_tables(self) -> None:
        """Rebuild the tables if training changed the density since they were built (or none exist)."""
        if self.tables_stale:
            self.update_tables()

    def _drop_table_buffers(self) -> None:
        for name in [
            name for name, _ in self.named_buffers(recurse=False) if name.startswith(_TABLE_PREFIX)
        ]:
            delattr(self, name)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Table buffers change shape with the trained density: take the shapes from the incoming state.
        incoming = {
            key[len(prefix) :]: value
            for key, value in state_dict.items()
            if key.startswith(prefix + _TABLE_PREFIX) and "." not in key[len(prefix) :]
        }
        self._drop_table_buffers()
        for name, value in incoming.items():
            self.register_buffer(name, torch.empty_like(value, device=self.medians.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._tables = None
        self.tables_stale = not incoming


# --------------------------------------------------------------------------- Gaussian conditionals


#: Smallest scale of a Gaussian conditional: narrower densities are widened to it.
SCALE_BOUND = 0.11
#: Scales of the Gaussian coding tables: 64 steps, evenly spaced in log scale from 0.11 to 256.
GAUSSIAN_SCALES: tuple[float, ...] = tuple(
    float(value) for value in np.exp(np.linspace(math.log(SCALE_BOUND), math.log(256.0), 64))
)


def _standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x * 2.0**-0.5)


def gaussian_table_pmfs(
    scales: Sequence[float], tail_mass: float = 1e-9
) -> tuple[list[np.ndarray], np.ndarray]:
    """PMFs of ``round(y - mean)`` for ``y ~ N(mean, s²)``, one per scale, and their first symbols.

    Each covers the integers within the ``tail_mass/2`` quantiles (wider values go through the
    escape symbol). Computed with Python's float64 ``math.erfc``; the tables built from them are
    stored in the model's state dict, so a decoder never recomputes them.
    """
    quantile = statistics.NormalDist().inv_cdf(1.0 - tail_mass / 2)
    pmfs, offsets = [], []
    for scale in scales:
        half = max(1, math.ceil(quantile * scale))
        # P(k) = Φ((k + 1/2)/s) - Φ((k - 1/2)/s), from the lower tail for accuracy (symmetric in k).
        masses = [
            0.5 * (math.erfc(-(k + 0.5) / (scale * math.sqrt(2))) - math.erfc(-(k - 0.5) / (scale * math.sqrt(2))))
            for k in range(-half, 1)
        ]
        pmfs.append(np.array(masses + masses[-2::-1]))
        offsets.append(-half)
    return pmfs, np.array(offsets)


class GaussianConditional(nn.Module):
    """Rate of latents whose density is given per element: ``N(mean, scale²)`` convolved with a unit box.

    The probability of a rounded latent ``ŷ`` is ``Φ((ŷ - μ + 1/2)/σ) - Φ((ŷ - μ - 1/2)/σ)``, also the
    density of the noisy latent in training. For coding, the symbol ``round(y - μ)`` of each latent
    uses the table of the smallest of :data:`GAUSSIAN_SCALES` at least as wide as its ``σ``: a fixed
    set of integer tables, built once and kept in the state dict (``table_*`` buffers).
    """

    def __init__(self, scales: Sequence[float] = GAUSSIAN_SCALES, tail_mass: float = 1e-9) -> None:
        super().__init__()
        pmfs, offsets = gaussian_table_pmfs(scales, tail_mass)
        tables = FrequencyTables.from_pmfs(pmfs, offsets, precision=TABLE_PRECISION)
        self.register_buffer("scale_levels", torch.tensor(scales, dtype=torch.float64))
        for key, array in tables.to_arrays().items():
            self.register_buffer(_TABLE_PREFIX + key, torch.from_numpy(np.array(array, dtype=np.int64)))
        self._tables: FrequencyTables | None = None

    def likelihood(
        self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Probability of each (noisy or rounded) latent of ``y`` under ``N(means, scales²)``, at least 1e-9."""
        values = torch.abs(y - means) if means is not None else torch.abs(y)
        scales = lower_bound(scales, SCALE_BOUND)
        upper = _standard_normal_cdf((0.5 - values) / scales)
        lower = _standard_normal_cdf((-0.5 - values) / scales)
        return lower_bound(upper - lower, LIKELIHOOD_BOUND)

    def table_indices(self, scale_units: torch.Tensor, fraction_bits: int) -> np.ndarray:
        """The table of each latent, from its scale in fixed point (integers in units of ``2**-fraction_bits``).

        The smallest scale level at least as wide as the scale (levels below :data:`SCALE_BOUND`
        take the first): integer comparisons, so the same on every machine.
        """
        levels = self.scale_levels.to(scale_units.device, torch.float64)
        thresholds = torch.floor(levels[:-1] * 2.0**fraction_bits)
        indices = torch.searchsorted(thresholds, scale_units.to(torch.float64).contiguous())
        return indices.cpu().numpy().astype(np.int64)

    @property
    def tables(self) -> FrequencyTables:
        """The integer coding tables, one per scale level, read from the buffers."""
        if self._tables is None:
            self._tables = _tables_in_buffers(self)
        return self._tables

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._tables = None
