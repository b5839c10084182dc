"""Integer frequency tables: from a float probability model to the tables a coder needs.

Arithmetic coders and rANS work with integer frequencies that sum to a power of two. Encoder
and decoder must build bit-identical tables, so the conversion uses only operations whose
result IEEE 754 fixes exactly (products, quotients, an exactly rounded sum) and breaks ties by
symbol index; it never depends on summation order, libm or the number of threads.

:class:`FrequencyTables` holds many such tables, each with its value range and an ESCAPE symbol
for values outside it; the coders (:mod:`nicbook.entropy.rans`) read them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

MAX_PRECISION = 31
#: Largest precision of a :class:`FrequencyTables`: the rANS coder keeps its states at least
#: ``2**32``, so ``2**16`` times above any frequency, which is what keeps its cost exact.
MAX_TABLE_PRECISION = 16
MAX_OFFSET = 1 << 62  # keeps offset + table size and escape distances inside (u)int64


def quantize_pmf(pmf: ArrayLike, precision: int = 16) -> np.ndarray:
    """Integer frequencies, each >= 1, summing to exactly ``2**precision``.

    Starts from ``round(p * 2**precision)`` clamped to at least 1, then repairs the total by
    moving single counts where the cost in expected code length is smallest: a count is
    added where ``p / (f + 1/2)`` is largest and removed where ``p / (f - 1/2)`` is smallest
    (first-order estimates of the change in cross-entropy). ``pmf`` need not be normalised.

    Raises
    ------
    ValueError
        If ``pmf`` is empty, has negative or non-finite entries or zero mass, or has more
        than ``2**precision`` symbols (each needs a non-zero frequency).
    """
    if not 1 <= precision <= MAX_PRECISION:
        raise ValueError(f"precision must be in [1, {MAX_PRECISION}], got {precision}")
    p = np.asarray(pmf, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError("pmf must be a non-empty 1-D array")
    if p.size > 1 << precision:
        raise ValueError(f"{p.size} symbols do not fit in a table of precision {precision}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("pmf entries must be finite and non-negative")
    mass = math.fsum(p.tolist())
    if mass <= 0:
        raise ValueError("pmf must have positive total mass")
    p = p / mass
    total = 1 << precision
    freq = np.maximum(1, np.floor(p * total + 0.5)).astype(np.int64)
    excess = int(freq.sum()) - total
    while excess > 0:
        removable = np.flatnonzero(freq > 1)
        if excess >= removable.size:
            # Every removable count loses one, as often as that stays so: k rounds at once.
            rounds = min(int(freq[removable].min()) - 1, excess // removable.size)
            freq[removable] -= rounds
            excess -= rounds * removable.size
            continue
        cost = p[removable] / (freq[removable] - 0.5)
        chosen = removable[np.argsort(cost, kind="stable")[:excess]]
        freq[chosen] -= 1
        excess -= chosen.size
    if excess < 0:
        gain = p / (freq + 0.5)
        freq[np.argsort(-gain, kind="stable")[:-excess]] += 1
    return freq.astype(np.uint32)


class FrequencyTables:
    """``T`` integer frequency tables, each over its own value range plus an ESCAPE symbol.

    Table ``t`` covers values ``offsets[t] .. offsets[t] + sizes[t] - 1``; its frequencies
    are the ``sizes[t]`` regular symbols followed by ESCAPE, all >= 1, summing to
    ``2**precision``.

    Parameters
    ----------
    frequencies
        The tables concatenated into one 1-D integer array of length ``sum(sizes + 1)``, or a
        2-D array ``(T, K + 1)`` of equally sized tables (then ``sizes`` may be omitted).
    sizes, offsets
        ``(T,)`` integers; ``offsets`` defaults to zeros.
    precision
        Bits of the probability scale, 1 to 16.
    """

    def __init__(
        self,
        frequencies: ArrayLike,
        sizes: ArrayLike | None = None,
        offsets: ArrayLike | None = None,
        precision: int = 16,
    ) -> None:
        freq = np.asarray(frequencies)
        if freq.ndim == 2 and sizes is None:
            sizes = np.full(freq.shape[0], freq.shape[1] - 1)
        if sizes is None:
            raise ValueError("sizes is required for a flat frequency array")
        freq = freq.ravel()
        if freq.size and not np.issubdtype(freq.dtype, np.integer):
            raise ValueError(f"frequencies must be integers, got dtype {freq.dtype}")
        self.precision = int(precision)
        if not 1 <= self.precision <= MAX_TABLE_PRECISION:
            raise ValueError(f"precision must be in [1, {MAX_TABLE_PRECISION}], got {precision}")
        self.sizes = np.asarray(sizes, dtype=np.int64).ravel()
        self.offsets = (
            np.zeros_like(self.sizes) if offsets is None else np.asarray(offsets, dtype=np.int64).ravel()
        )
        if self.sizes.size == 0:
            raise ValueError("at least one table is needed")
        if self.offsets.shape != self.sizes.shape:
            raise ValueError(f"{self.sizes.size} sizes but {self.offsets.size} offsets")
        if self.sizes.min() < 1 or self.sizes.max() + 1 > 1 << self.precision:
            raise ValueError(
                f"table sizes must be in [1, 2**precision - 1] = [1, {(1 << self.precision) - 1}]"
            )
        if np.abs(self.offsets).max() > MAX_OFFSET:
            raise ValueError("offsets must be within +-2**62")
        widths = self.sizes + 1
        if freq.size != widths.sum():
            raise ValueError(f"expected {widths.sum()} frequencies (sizes + 1 per table), got {freq.size}")
        freq = freq.astype(np.int64)
        self.starts = np.cumsum(widths) - widths  # index of each table's first entry
        if freq.min() < 1 or np.any(np.add.reduceat(freq, self.starts) != 1 << self.precision):
            raise ValueError(f"every frequency must be >= 1 and every table must sum to 2**{self.precision}")
        self.frequencies = freq.astype(np.uint32)
        self.cumulative = (
            np.cumsum(freq) - freq - np.repeat(np.cumsum(freq)[self.starts] - freq[self.starts], widths)
        ).astype(np.uint32)
        for array in (self.frequencies, self.cumulative, self.sizes, self.offsets, self.starts):
            array.flags.writeable = False

    @classmethod
    def from_pmfs(
        cls,
        pmfs: ArrayLike | Sequence[ArrayLike],
        offsets: ArrayLike,
        precision: int = 16,
        escape_probability: float | None = None,
    ) -> FrequencyTables:
        """Quantize float PMFs (a ``(T, K)`` array or a list of 1-D arrays) into tables.

        ESCAPE gets ``escape_probability``; by default the mass a PMF leaves out of its range
        (``1 - sum(pmf)`` when that is positive), which is what a truncated model's tails hold.
        Either way it never gets less than the smallest frequency, ``2**-precision``.
        """
        pmfs = [np.asarray(p, dtype=np.float64).ravel() for p in pmfs]
        offsets = np.asarray(offsets, dtype=np.int64).ravel()
        if len(pmfs) != offsets.size:
            raise ValueError(f"{len(pmfs)} PMFs but {offsets.size} offsets")
        if not pmfs:
            raise ValueError("from_pmfs needs at least one PMF")
        tables = []
        for pmf in pmfs:
            if pmf.size == 0 or not np.all(np.isfinite(pmf)) or np.any(pmf < 0) or pmf.sum() <= 0:
                raise ValueError("each PMF must be non-empty, finite, non-negative, with positive mass")
            mass = math.fsum(pmf.tolist())  # exactly rounded: the same on every machine
            escape = max(0.0, 1.0 - mass) if escape_probability is None else float(escape_probability)
            if not 0 <= escape < 1:
                raise ValueError(f"escape_probability must be in [0, 1), got {escape}")
            normalised = pmf / mass * (1.0 - escape)
            tables.append(quantize_pmf(np.append(normalised, escape), precision))
        return cls(np.concatenate(tables), [p.size for p in pmfs], offsets, precision)

    @property
    def num_tables(self) -> int:
        return int(self.sizes.size)

    def __len__(self) -> int:
        return self.num_tables

    def __repr__(self) -> str:
        return f"FrequencyTables({self.num_tables} tables, sizes {self.sizes.min()}..{self.sizes.max()}, precision {self.precision})"

    def table(self, t: int) -> np.ndarray:
        """Frequencies of table ``t`` (regular symbols, then ESCAPE)."""
        return self.frequencies[self.starts[t] : self.starts[t] + self.sizes[t] + 1]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain integer arrays (for a checkpoint or ``np.savez``); see :meth:`from_arrays`."""
        return {
            "frequencies": self.frequencies.copy(),
            "sizes": self.sizes.copy(),
            "offsets": self.offsets.copy(),
            "precision": np.array(self.precision, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, ArrayLike]) -> FrequencyTables:
        return cls(
            arrays["frequencies"], arrays["sizes"], arrays["offsets"], int(np.asarray(arrays["precision"]))
        )

    def symbols(self, values: ArrayLike, table_indices: ArrayLike) -> np.ndarray:
        """Index of each value in its table (``values - offset``; ``sizes[t]`` = ESCAPE)."""
        values, tables = check_message(values, table_indices, self)
        entry, _ = self.entries(values, tables)
        return entry - self.starts[tables]

    def cheapest_bits(self) -> np.ndarray:
        """Per table, the cost in bits of its most probable symbol: no value it codes costs less."""
        largest = np.maximum.reduceat(self.frequencies, self.starts)
        return self.precision - np.log2(largest.astype(np.float64))

    def information_bits(self, values: ArrayLike, table_indices: ArrayLike) -> np.ndarray:
        """Ideal cost ``-log2(freq / 2**precision)`` of each value under its integer table.

        An escaped value counts the ESCAPE symbol only, not its Elias-gamma payload.
        """
        values, tables = check_message(values, table_indices, self)
        entry, _ = self.entries(values, tables)
        return self.entry_bits(entry)

    def entry_bits(self, entry: np.ndarray) -> np.ndarray:
        """Ideal cost in bits of each entry (index into the concatenated tables)."""
        return self.precision - np.log2(self.frequencies[entry].astype(np.float64))

    def entries(self, values: np.ndarray, tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat table entry of each value and the mask of escaped values."""
        offsets, sizes = self.offsets[tables], self.sizes[tables]
        escaped = (values < offsets) | (values >= offsets + sizes)
        local = np.where(escaped, sizes, values - offsets)
        return self.starts[tables] + local, escaped


def check_message(
    values: ArrayLike, table_indices: ArrayLike, tables: FrequencyTables
) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(values, table indices)`` as int64 vectors of equal length."""
    values = np.asarray(values)
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"values must be integers, got dtype {values.dtype}")
    if values.dtype == np.uint64 and values.size and values.max() > np.iinfo(np.int64).max:
        raise ValueError("values must fit in int64")
    values = values.astype(np.int64).ravel()
    return values, check_table_indices(table_indices, values.size, tables)


def check_table_indices(table_indices: ArrayLike, n: int, tables: FrequencyTables) -> np.ndarray:
    """``table_indices`` as an int64 vector of ``n`` valid indices into ``tables`` (a scalar broadcasts)."""
    indices = np.asarray(table_indices)
    if indices.size and not np.issubdtype(indices.dtype, np.integer):
        raise ValueError("table indices must be integers")
    indices = (
        np.broadcast_to(indices.astype(np.int64), (n,))
        if indices.ndim == 0
        else indices.astype(np.int64).ravel()
    )
    if indices.size != n:
        raise ValueError(f"{n} values but {indices.size} table indices")
    if n and (indices.min() < 0 or indices.max() >= tables.num_tables):
        raise ValueError(f"table indices must be in [0, {tables.num_tables})")
    return indices
