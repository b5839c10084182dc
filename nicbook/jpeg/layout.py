"""Frame geometry shared by the encoder and decoder: component sizes, MCUs, block scan order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class FrameLayout:
    """Image size and the ``(h, v)`` sampling factors of each component (T.81 A.1.1)."""

    height: int
    width: int
    factors: tuple[tuple[int, int], ...]

    @property
    def max_h(self) -> int:
        return max(h for h, _ in self.factors)

    @property
    def max_v(self) -> int:
        return max(v for _, v in self.factors)

    @property
    def mcus_x(self) -> int:
        """MCUs per row of an interleaved scan."""
        return _ceil_div(self.width, 8 * self.max_h)

    @property
    def mcus_y(self) -> int:
        return _ceil_div(self.height, 8 * self.max_v)

    def component_size(self, component: int) -> tuple[int, int]:
        """``(rows, cols)`` of a component's sample plane."""
        h, v = self.factors[component]
        return _ceil_div(self.height * v, self.max_v), _ceil_div(self.width * h, self.max_h)

    def component_blocks(self, component: int) -> tuple[int, int]:
        """Blocks that hold image samples: ``(rows, cols)``."""
        rows, cols = self.component_size(component)
        return _ceil_div(rows, 8), _ceil_div(cols, 8)

    def mcu_blocks(self, component: int) -> tuple[int, int]:
        """Blocks of a component in an interleaved scan, whole MCUs: ``(rows, cols)``."""
        h, v = self.factors[component]
        return self.mcus_y * v, self.mcus_x * h

    def total_blocks(self, components: list[int]) -> int:
        """Number of blocks a scan of ``components`` codes."""
        if len(components) == 1:
            rows, cols = self.component_blocks(components[0])
            return rows * cols
        return self.mcus_x * self.mcus_y * sum(h * v for h, v in (self.factors[c] for c in components))


def mcu_pattern(layout: FrameLayout, components: list[int]) -> np.ndarray:
    """Component index of each block within one MCU of a scan (T.81 A.2.3)."""
    if len(components) == 1:
        return np.array(components)
    return np.concatenate([np.full(h * v, c) for c, (h, v) in ((c, layout.factors[c]) for c in components)])


def scan_block_order(layout: FrameLayout, components: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(component, block_row, block_col)`` of every block of a scan, in bitstream order.

    A scan of a single component codes its blocks in raster order; an interleaved scan codes
    MCUs in raster order, each holding ``v`` rows of ``h`` blocks of every component in turn.
    """
    if len(components) == 1:
        rows, cols = layout.component_blocks(components[0])
        row, col = np.divmod(np.arange(rows * cols), cols)
        return np.full(rows * cols, components[0]), row, col
    pattern_c, pattern_y, pattern_x = [], [], []
    for c in components:
        h, v = layout.factors[c]
        y, x = np.divmod(np.arange(h * v), h)
        pattern_c.append(np.full(h * v, c))
        pattern_y.append(y)
        pattern_x.append(x)
    pattern_c, pattern_y, pattern_x = (np.concatenate(p) for p in (pattern_c, pattern_y, pattern_x))
    factors = np.array(layout.factors)
    mcu_y, mcu_x = np.divmod(np.arange(layout.mcus_x * layout.mcus_y), layout.mcus_x)
    row = mcu_y[:, None] * factors[pattern_c, 1] + pattern_y
    col = mcu_x[:, None] * factors[pattern_c, 0] + pattern_x
    return np.tile(pattern_c, len(mcu_y)), row.ravel(), col.ravel()
