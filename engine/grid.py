"""Pixel grids: a CRS, an affine transform and a size, as small immutable values."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

Bounds = tuple[float, float, float, float]  # xmin, ymin, xmax, ymax


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid. `transform` maps (col, row) to (x, y) of pixel corners."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @classmethod
    def covering(
        cls, crs: CRS, bounds: Bounds, res_m: float, anchor_xy: tuple[float, float] | None = None
    ) -> Grid:
        """The smallest grid of `res_m` pixels covering `bounds`, snapped to `anchor_xy`.

        The anchor (default: a multiple of the resolution) keeps grids of the same area from
        different requests pixel-aligned with each other and with the source raster.
        """
        ax, ay = anchor_xy if anchor_xy is not None else (0.0, 0.0)
        xmin, ymin, xmax, ymax = bounds
        left = ax + math.floor((xmin - ax) / res_m + 1e-9) * res_m
        top = ay + math.ceil((ymax - ay) / res_m - 1e-9) * res_m
        width = max(1, math.ceil((xmax - left) / res_m - 1e-9))
        height = max(1, math.ceil((top - ymin) / res_m - 1e-9))
        return cls(crs, Affine(res_m, 0.0, left, 0.0, -res_m, top), width, height)

    @property
    def res_m(self) -> float:
        """Pixel size in CRS units (metres for the projected grids the engine processes in)."""
        return abs(self.transform.a)

    @property
    def bounds(self) -> Bounds:
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def area_m2(self) -> float:
        return self.width * self.height * self.res_m**2

    def window_transform(self, window: Window) -> Affine:
        """Transform of a window's own pixel grid."""
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def window_bounds(self, window: Window) -> Bounds:
        t = self.window_transform(window)
        return (t.c, t.f + t.e * window.height, t.c + t.a * window.width, t.f)

    def subgrid(self, window: Window) -> Grid:
        """The grid of a window of this grid."""
        return Grid(self.crs, self.window_transform(window), int(window.width), int(window.height))

    def window_of(self, bounds: Bounds) -> Window:
        """The window of whole pixels covering `bounds`, not clipped to the grid."""
        inv = ~self.transform
        c0, r0 = inv @ (bounds[0], bounds[3])
        c1, r1 = inv @ (bounds[2], bounds[1])
        col0, row0 = math.floor(c0 + 1e-9), math.floor(r0 + 1e-9)
        col1, row1 = math.ceil(c1 - 1e-9), math.ceil(r1 - 1e-9)
        return Window(col0, row0, col1 - col0, row1 - row0)

    def clip(self, window: Window) -> Window | None:
        """`window` cut to the grid, or None when they do not overlap."""
        col0, row0 = max(int(window.col_off), 0), max(int(window.row_off), 0)
        col1 = min(int(window.col_off + window.width), self.width)
        row1 = min(int(window.row_off + window.height), self.height)
        if col1 <= col0 or row1 <= row0:
            return None
        return Window(col0, row0, col1 - col0, row1 - row0)

    def same_as(self, other: Grid, tol: float = 1e-6) -> bool:
        """True when both grids have the same CRS, pixel size and origin (and so pixels)."""
        return (
            self.crs == other.crs
            and self.width == other.width
            and self.height == other.height
            and self.transform.almost_equals(other.transform, precision=tol * self.res_m)
        )
