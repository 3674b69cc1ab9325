"""The area to map: the whole raster, an extent, or polygons, as a window and a tile mask."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioError
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from engine.errors import InputNotFound, InvalidInput
from engine.failures import is_gdal_path
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


@dataclass(frozen=True)
class Extent:
    """`--extent` parsed: bounds and their CRS (None: the input raster's, known later)."""

    bounds: Bounds
    crs: CRS | None = None

    def in_crs_or(self, default_crs: CRS) -> tuple[Bounds, CRS]:
        """The bounds with their CRS, the raster's when the extent named none."""
        return self.bounds, self.crs or default_crs


def parse_extent(spec: str) -> Extent:
    """`xmin,ymin,xmax,ymax[,CRS]` (CRS as EPSG:n, n or an authority string), checked once at
    the command line so a typo never waits for the raster or the model."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) not in (4, 5):
        raise InvalidInput(f"--extent {spec!r} must be xmin,ymin,xmax,ymax[,CRS]")
    try:
        xmin, ymin, xmax, ymax = (float(p) for p in parts[:4])
    except ValueError:
        raise InvalidInput(f"--extent {spec!r}: the four bounds must be numbers") from None
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        raise InvalidInput(f"--extent {spec!r}: the four bounds must be finite numbers")
    if xmin >= xmax or ymin >= ymax:
        raise InvalidInput(f"--extent {spec!r}: xmin must be < xmax and ymin < ymax")
    crs = None
    if len(parts) == 5:
        code = parts[4]
        try:
            crs = CRS.from_user_input(f"EPSG:{code}" if code.isdigit() else code)
        except Exception as exc:  # rasterio raises CRSError subclasses of several kinds
            raise InvalidInput(f"--extent: {code!r} is not a CRS rasterio knows ({exc})") from None
    return Extent((xmin, ymin, xmax, ymax), crs)


def _finite(bounds: Sequence[float]) -> bool:
    return len(bounds) == 4 and all(math.isfinite(float(v)) for v in bounds)


def _transform(src: CRS, dst: CRS, bounds: Bounds) -> Bounds | None:
    """`bounds` from `src` to `dst`, or None where PROJ cannot (outside a CRS's domain)."""
    with np.errstate(all="ignore"):
        try:
            out = transform_bounds(src, dst, *bounds, densify_pts=21)
        except (CRSError, ValueError, RasterioError, CPLE_BaseError):
            return None
    if not _finite(out) or out[0] >= out[2] or out[1] >= out[3]:
        return None  # non-finite, or across the antimeridian: not a usable box
    return tuple(float(v) for v in out)  # type: ignore[return-value]


def _intersection(a: Bounds, b: Bounds) -> Bounds | None:
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] < box[2] and box[1] < box[3] else None


def _crs_name(crs: CRS) -> str:
    if crs.to_epsg() is not None:
        return f"EPSG:{crs.to_epsg()}"
    text = crs.to_proj4() or crs.to_string()
    return text if len(text) <= 80 else text[:77] + "..."


def _format(bounds: Sequence[float], crs: CRS) -> str:
    return ",".join(f"{v:.6f}" if crs.is_geographic else f"{v:.1f}" for v in bounds)


def _clip_or_fail(grid: Grid, window: Window, what: str) -> Window:
    clipped = grid.clip(window)
    if clipped is None:
        raise InvalidInput(f"{what} does not overlap the input raster; nothing to map")
    return clipped


def area_from_extent(grid: Grid, bounds: Bounds, crs: CRS) -> Area:
    """The part of the processing grid inside an extent given in any CRS.

    An extent in another CRS is first cut to the raster's footprint in that CRS, so a box
    larger than the processing CRS's domain (the whole world in EPSG:4326) still works; one
    that cannot be transformed at all is refused with a message, never a PROJ error.
    """
    spec = ",".join(f"{v:g}" for v in bounds)
    if crs != grid.crs:
        footprint = _transform(grid.crs, crs, grid.bounds)
        if footprint is not None:
            cut = _intersection(bounds, footprint)
            if cut is None:
                raise InvalidInput(
                    f"--extent {spec} does not overlap the input raster, which covers "
                    f"{_format(footprint, crs)} in {_crs_name(crs)}; "
                    "nothing to map"
                )
            bounds = cut
        moved = _transform(crs, grid.crs, bounds)
        if moved is None:
            raise InvalidInput(
                f"--extent {spec} in {_crs_name(crs)} cannot be transformed to the raster's "
                f"CRS {_crs_name(grid.crs)} (it lies outside where one of them is defined); "
                "give the extent in the raster's CRS, or a box around the raster"
            )
        bounds = moved
    inside = _intersection(bounds, grid.bounds)
    if inside is None:
        raise InvalidInput(f"--extent {spec} does not overlap the input raster; nothing to map")
    return Area(_clip_or_fail(grid, grid.window_of(inside), f"--extent {spec}"))


def _to_grid_crs(frame, grid: Grid, path: Path | str):
    """The polygons in the grid's CRS, cut to the raster's footprint first if some of them
    cannot be transformed as they are (outside the CRS's domain: a world polygon)."""
    from shapely import segmentize
    from shapely.geometry import box

    target = grid.crs.to_wkt()
    with np.errstate(all="ignore"):
        try:
            moved = frame.to_crs(target)
        except (CRSError, ValueError, RuntimeError):
            moved = None
        if moved is not None and np.isfinite(moved.geometry.bounds.to_numpy()).all():
            return moved
        footprint = _transform(grid.crs, CRS.from_user_input(frame.crs.to_wkt()), grid.bounds)
        if footprint is not None:
            x0, y0, x1, y1 = footprint
            dx, dy = (x1 - x0) * 0.1, (y1 - y0) * 0.1
            around = segmentize(box(x0 - dx, y0 - dy, x1 + dx, y1 + dy), max(dx, dy) / 4)
            cut = frame.clip(around, keep_geom_type=True)
            cut = cut[~cut.geometry.is_empty]
            try:
                moved = cut.to_crs(target)
            except (CRSError, ValueError, RuntimeError):
                moved = None
            if moved is not None and np.isfinite(moved.geometry.bounds.to_numpy()).all():
                return moved
    raise InvalidInput(
        f"mask {path}: its polygons cannot be transformed from {frame.crs.to_string()} to the "
        f"raster's CRS {_crs_name(grid.crs)} (they reach outside where it is defined); cut "
        "the mask to the area of the raster, or give it in the raster's CRS"
    )


def area_from_polygons(grid: Grid, path: Path | str) -> Area:
    """The part of the processing grid covered by the polygons of any OGR vector file
    (a local path or a GDAL one: `/vsizip/...`, a URL)."""
    import geopandas as gpd

    if not is_gdal_path(path) and not Path(path).exists():
        raise InputNotFound(f"mask {path} does not exist")
    try:
        frame = gpd.read_file(os.fspath(path))
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise InvalidInput(f"mask {path} is not a vector file OGR can read ({exc})") from None
    if frame.crs is None:
        raise InvalidInput(f"mask {path} has no CRS; assign one")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    frame = frame[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if frame.empty:
        raise InvalidInput(f"mask {path} holds no polygons; nothing to map")
    frame = _to_grid_crs(frame, grid, path)
    if frame.empty:
        raise InvalidInput(f"the mask {path} does not overlap the input raster; nothing to map")
    inside = _intersection(tuple(frame.total_bounds), grid.bounds)
    if inside is None:
        raise InvalidInput(f"the mask {path} does not overlap the input raster; nothing to map")
    window = _clip_or_fail(grid, grid.window_of(inside), f"the mask {path}")
    return Area(window, tuple(frame.geometry))


def whole_grid(grid: Grid) -> Area:
    return Area(Window(0, 0, grid.width, grid.height))
