"""Pixel grids: a CRS, an affine transform and a size, as small immutable values.

One `Grid` type serves every grid of the engine: the source raster's, the 0.2 m processing grid,
the output's, the 10 m grid a Sentinel-2 series is loaded onto. Windows inside a grid are
rasterio `Window` values (``col_off, row_off, width, height``), never bare tuples.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from engine.errors import InvalidInput

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

    @classmethod
    def aligned(cls, crs: CRS, bounds: Bounds, res_m: float = 10.0, buffer_px: int = 0) -> Grid:
        """The grid covering `bounds` plus `buffer_px` pixels on every side, with its corners on
        multiples of `res_m` (a 10 m grid in a UTM zone lines up with that zone's Sentinel-2
        tiles and needs no resampling of the 10 m bands).

        Raises:
            InvalidInput: the bounds are empty or not finite.
        """
        xmin, ymin, xmax, ymax = (float(v) for v in bounds)
        if not (xmax > xmin and ymax > ymin) or not all(map(math.isfinite, bounds)):
            raise InvalidInput(f"area bounds {bounds} are empty; give (xmin, ymin, xmax, ymax)")
        x0 = math.floor(xmin / res_m) * res_m - buffer_px * res_m
        y1 = math.ceil(ymax / res_m) * res_m + buffer_px * res_m
        x1 = math.ceil(xmax / res_m) * res_m + buffer_px * res_m
        y0 = math.floor(ymin / res_m) * res_m - buffer_px * res_m
        width, height = round((x1 - x0) / res_m), round((y1 - y0) / res_m)
        return cls(crs, Affine(float(res_m), 0.0, x0, 0.0, -float(res_m), y1), width, height)

    @classmethod
    def of(cls, dataset: Any) -> Grid:
        """The grid of an open raster (anything with rasterio's crs, transform, width, height)."""
        return cls(dataset.crs, dataset.transform, dataset.width, dataset.height)

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

    def num_blocks(self, block_px: int) -> int:
        """Number of windows `blocks` yields: ceil(height / block_px) * ceil(width / block_px)."""
        return -(-self.height // block_px) * -(-self.width // block_px)

    def blocks(self, block_px: int) -> Iterator[Window]:
        """Square `block_px` windows covering the grid once, row-major; edge blocks are clipped."""
        for row_off in range(0, self.height, block_px):
            for col_off in range(0, self.width, block_px):
                yield Window(
                    col_off,
                    row_off,
                    min(block_px, self.width - col_off),
                    min(block_px, self.height - row_off),
                )

    def centred_window(self, x: float, y: float, size_px: int) -> Window:
        """The `size_px` square whose centre is the pixel corner nearest to (x, y), not clipped to
        the grid (FLAIR crops ``[c - size/2 : c + size/2]`` around a centre index)."""
        col_c = round((x - self.transform.c) / self.res_m)
        row_c = round((self.transform.f - y) / self.res_m)
        half = size_px // 2
        return Window(col_c - half, row_c - half, size_px, size_px)

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

    def to_geobox(self) -> Any:
        """This grid as an odc-geo `GeoBox` (what odc-stac loads onto)."""
        from odc.geo.geobox import GeoBox

        return GeoBox((self.height, self.width), self.transform, self.crs.to_string())

    def lonlat_bounds(self) -> Bounds:
        """The grid's extent in longitude/latitude (densified edges), for STAC searches."""
        from pyproj import Transformer

        to_lonlat = Transformer.from_crs(self.crs.to_string(), "EPSG:4326", always_xy=True)
        return to_lonlat.transform_bounds(*self.bounds, densify_pts=21)

    def to_dict(self) -> dict[str, float | int | str]:
        """JSON form of a north-up grid of square pixels (cache keys and metadata)."""
        return {
            "crs": self.crs.to_string(),
            "x_min": self.transform.c,
            "y_max": self.transform.f,
            "res_m": self.res_m,
            "width_px": self.width,
            "height_px": self.height,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Grid:
        """Inverse of `to_dict`."""
        res_m = float(d["res_m"])
        transform = Affine(res_m, 0.0, float(d["x_min"]), 0.0, -res_m, float(d["y_max"]))
        return cls(
            CRS.from_user_input(str(d["crs"])), transform, int(d["width_px"]), int(d["height_px"])
        )
