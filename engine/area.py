"""The area to map: the whole raster, an extent, or polygons, as a window and a tile mask."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from engine.errors import InputNotFound, InvalidInput
from engine.grid import Bounds, Grid


@dataclass(frozen=True)
class Area:
    """Where to compute: a window of the processing grid, optionally limited to polygons."""

    window: Window
    polygons: tuple | None = None  # shapely geometries in the processing CRS

    @cached_property
    def _index(self):
        from shapely import STRtree

        return STRtree(self.polygons)

    def _near(self, grid: Grid, window: Window) -> list:
        """The polygons whose envelopes meet a window (an STRtree query, not a scan)."""
        from shapely.geometry import box

        hits = self._index.query(box(*grid.window_bounds(window)))
        return [self.polygons[i] for i in sorted(hits)]

    def touches(self, grid: Grid, window: Window) -> bool:
        """Whether any polygon reaches the window (cheap: checked before pixels are read)."""
        if self.polygons is None:
            return True
        from shapely.geometry import box

        square = box(*grid.window_bounds(window))
        return any(g.intersects(square) for g in self._near(grid, window))

    def polygon_mask(self, grid: Grid, window: Window) -> np.ndarray | None:
        """Boolean (h, w) mask of a window of `grid`, True inside the polygons; None if none."""
        if self.polygons is None:
            return None
        from rasterio.features import rasterize

        h, w = int(window.height), int(window.width)
        near = self._near(grid, window)
        if not near:
            return np.zeros((h, w), dtype=bool)
        return rasterize(
            ((g, 1) for g in near),
            out_shape=(h, w),
            transform=grid.window_transform(window),
            fill=0,
            dtype="uint8",
        ).astype(bool)


def parse_extent(spec: str, default_crs: CRS) -> tuple[Bounds, CRS]:
    """`xmin,ymin,xmax,ymax[,CRS]` (CRS as EPSG:n, n or WKT-free authority string)."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) not in (4, 5):
        raise InvalidInput(f"--extent {spec!r} must be xmin,ymin,xmax,ymax[,CRS]")
    try:
        xmin, ymin, xmax, ymax = (float(p) for p in parts[:4])
    except ValueError:
        raise InvalidInput(f"--extent {spec!r}: the four bounds must be numbers") from None
    if xmin >= xmax or ymin >= ymax:
        raise InvalidInput(f"--extent {spec!r}: xmin must be < xmax and ymin < ymax")
    crs = default_crs
    if len(parts) == 5:
        code = parts[4]
        try:
            crs = CRS.from_user_input(f"EPSG:{code}" if code.isdigit() else code)
        except Exception as exc:  # rasterio raises CRSError subclasses of several kinds
            raise InvalidInput(f"--extent: {code!r} is not a CRS rasterio knows ({exc})") from None
    return (xmin, ymin, xmax, ymax), crs


def _clip_or_fail(grid: Grid, window: Window, what: str) -> Window:
    clipped = grid.clip(window)
    if clipped is None:
        raise InvalidInput(f"{what} does not overlap the input raster; nothing to map")
    return clipped


def area_from_extent(grid: Grid, bounds: Bounds, crs: CRS) -> Area:
    """The part of the processing grid inside an extent given in any CRS."""
    if crs != grid.crs:
        bounds = transform_bounds(crs, grid.crs, *bounds, densify_pts=21)
    return Area(_clip_or_fail(grid, grid.window_of(bounds), f"the extent {bounds}"))


def area_from_polygons(grid: Grid, path: Path) -> Area:
    """The part of the processing grid covered by the polygons of any OGR vector file."""
    import geopandas as gpd

    if not Path(path).exists():
        raise InputNotFound(f"mask {path} does not exist")
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise InvalidInput(f"mask {path} is not a vector file OGR can read ({exc})") from None
    if frame.crs is None:
        raise InvalidInput(f"mask {path} has no CRS; assign one")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    frame = frame[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if frame.empty:
        raise InvalidInput(f"mask {path} holds no polygons; nothing to map")
    frame = frame.to_crs(grid.crs.to_wkt())
    window = _clip_or_fail(grid, grid.window_of(tuple(frame.total_bounds)), f"the mask {path}")
    return Area(window, tuple(frame.geometry))


def whole_grid(grid: Grid) -> Area:
    return Area(Window(0, 0, grid.width, grid.height))
