"""Placing tile cores computed on the processing grid into the output grid.

By default the output grid is the processing grid (0.2 m) and a core is written as it is. With
`--output-resolution input` the output is the input raster's own grid (same CRS): each output
pixel takes the class of the processing pixel under its centre (nearest neighbour), and every
output pixel belongs to exactly one core, so cores still never overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from engine.grid import Grid


@dataclass(frozen=True)
class CorePlacement:
    """Where a core lands in the output grid and which core pixels fill it."""

    window: Window
    rows: np.ndarray | None  # index arrays into the core; None = identity
    cols: np.ndarray | None

    def take(self, array: np.ndarray) -> np.ndarray:
        """The core array (..., h, w) sampled onto the output window."""
        if self.rows is None or self.cols is None:
            return array
        return array[..., self.rows[:, None], self.cols[None, :]]


class OutputGridMapper:
    """Maps processing-grid windows to output-grid windows."""

    def __init__(self, processing: Grid, output: Grid) -> None:
        self.processing = processing
        self.output = output
        self.identity = processing.same_as(output)

    def place(self, core: Window) -> CorePlacement | None:
        """The output pixels whose centres fall inside `core` (None when there are none)."""
        if self.identity:
            return CorePlacement(core, None, None)
        xmin, ymin, xmax, ymax = self.processing.window_bounds(core)
        t = self.output.transform
        # output column j has its centre at t.c + (j + 0.5) * t.a
        c0 = max(math.ceil((xmin - t.c) / t.a - 0.5 - 1e-9), 0)
        c1 = min(math.ceil((xmax - t.c) / t.a - 0.5 - 1e-9), self.output.width)
        r0 = max(math.ceil((t.f - ymax) / -t.e - 0.5 - 1e-9), 0)
        r1 = min(math.ceil((t.f - ymin) / -t.e - 0.5 - 1e-9), self.output.height)
        if c1 <= c0 or r1 <= r0:
            return None
        xs = t.c + (np.arange(c0, c1) + 0.5) * t.a
        ys = t.f + (np.arange(r0, r1) + 0.5) * t.e
        res = self.processing.res_m
        cols = np.clip(np.floor((xs - xmin) / res).astype(np.int64), 0, int(core.width) - 1)
        rows = np.clip(np.floor((ymax - ys) / res).astype(np.int64), 0, int(core.height) - 1)
        return CorePlacement(Window(c0, r0, c1 - c0, r1 - r0), rows, cols)
