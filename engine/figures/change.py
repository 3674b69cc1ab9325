"""Change between two FLAIR maps, block by block: the change raster and the transition matrix.

One map's grid is the grid of the comparison (the later map's by default); the other map is read
through a GDAL warped view (`WarpedVRT`) onto it with nearest resampling, so each pixel takes
the class of the other map's pixel under its centre and no class is ever averaged. A pixel is
compared where both maps hold a FLAIR code; where either is no data it is neither change nor
unchanged, and it is not in the matrix. Memory is a few arrays of one block, whatever the size
of the maps.

The change raster holds `before * 100 + after` where the class changed (1013: from 10
herbaceous vegetation to 13 swimming pool) and 0 where it did not or where either map is no
data (its nodata, so unchanged land is transparent). With `pairs_path`, a second raster holds
the same code for every compared pixel, unchanged ones included (101 = building stayed
building): what per-zone figures are measured on.
"""

from __future__ import annotations

import csv
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.classes import CODES, class_name
from engine.errors import InvalidInput
from engine.failures import file_name
from engine.figures.vectors import neighbours_in_turn, zone_names, zones_in_crs
from engine.progress import Reporter

if TYPE_CHECKING:  # rasterio comes with these: imported when the work runs
    import geopandas

    from engine.figures.maps import FlairMap
    from engine.grid import Grid

DEFAULT_BLOCK_PX = 2048
MIN_BLOCK_PX = 16
MAX_CELLS_IN_MEMORY = 16_000_000  # pixels exactextract holds at once, per zone piece
GDAL_CACHE_BYTES = 64 * 1024 * 1024  # in bytes: rasterio hands the value to GDALSetCacheMax64
ZONES_CACHE_BYTES = 256 * 1024 * 1024  # the per-zone pass reads shared blocks again
CHANGE_FACTOR = 100  # change code = before * 100 + after
MATRIX_SIZE = max(CODES) + 1  # codes 0..19 index the matrix; row and column 0 stay empty
CHANGE_ENCODING = "before * 100 + after where the class changed; 0 = unchanged or no data"
PAIRS_ENCODING = "before * 100 + after for every pixel with a class in both maps; 0 = no data"
GRID_CHOICES = ("after", "before")


@dataclass(frozen=True)
class Transitions:
    """Pixel counts `counts[before, after]` (codes 0..19; 0 unused) and the area of a pixel."""

    counts: np.ndarray
    pixel_area_m2: float

    @property
    def areas_m2(self) -> np.ndarray:
        return self.counts * self.pixel_area_m2

    @property
    def compared_px(self) -> int:
        return int(self.counts.sum())

    @property
    def changed_px(self) -> int:
        return self.compared_px - int(np.trace(self.counts))

    def changed_pairs(self) -> list[tuple[int, int]]:
        """(before, after) of every change present, in code order."""
        rows, cols = np.nonzero(self.counts)
        return sorted((int(b), int(a)) for b, a in zip(rows, cols, strict=True) if b != a)


@dataclass(frozen=True)
class ChangeResult:
    """What a comparison measured, and on which grid."""

    transitions: Transitions
    grid: Grid
    grid_role: str  # "after" or "before": whose grid the comparison ran on
    aligned: bool  # True when the other map was read through a warped view


def comparison_maps(before: FlairMap, after: FlairMap, grid_role: str) -> tuple[FlairMap, FlairMap]:
    """(map whose grid is used, map aligned onto it), refusing maps that do not overlap.

    Raises:
        InvalidInput: `grid_role` is not "after" or "before", or the maps' extents are apart.
    """
    from rasterio.warp import transform_bounds

    if grid_role not in GRID_CHOICES:
        raise InvalidInput(f"grid {grid_role!r} is not one of {', '.join(GRID_CHOICES)}")
    base, other = (after, before) if grid_role == "after" else (before, after)
    left, bottom, right, top = base.bounds
    o_left, o_bottom, o_right, o_top = transform_bounds(
        other.crs, base.crs, *other.bounds, densify_pts=21
    )
    if max(left, o_left) >= min(right, o_right) or max(bottom, o_bottom) >= min(top, o_top):
        raise InvalidInput(
            f"the before map {file_name(before.path)} and the after map {file_name(after.path)} "
            "do not overlap; give two maps of the same place"
        )
    return base, other


def _grid_of(flair_map: FlairMap) -> Grid:
    from engine.grid import Grid

    return Grid(flair_map.crs, flair_map.transform, flair_map.width_px, flair_map.height_px)


def _tile_px(block_px: int) -> int:
    """GeoTIFF tile side dividing the block side, so each block writes whole tiles."""
    return next((t for t in (256, 128, 64, 32, 16) if block_px % t == 0), 256)


def _profile(grid: Grid, tile_px: int) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": "uint16",
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": tile_px,
        "blockysize": tile_px,
        "compress": "deflate",
        "bigtiff": "IF_SAFER",
    }


def _valid(codes: np.ndarray, nodata: int) -> np.ndarray:
    return (codes != nodata) & (codes >= 1) & (codes <= max(CODES))


def describe_alignment(base: FlairMap, other: FlairMap, grid_role: str, aligned: bool) -> str:
    """The one log line saying whose grid is used and how the other map meets it."""
    other_role = "before" if grid_role == "after" else "after"
    grid = _grid_of(base)
    where = (
        f"the {grid_role} map's grid ({file_name(base.path)}: {grid.crs.to_string()}, "
        f"{grid.res_m:g} m, {grid.width} x {grid.height} px)"
    )
    if not aligned:
        return f"comparing on {where}; both maps share it"
    return (
        f"comparing on {where}; the {other_role} map {file_name(other.path)} is aligned to it by "
        "nearest class (each pixel takes the class under its centre, never an average)"
    )


def compute_change(
    before: FlairMap,
    after: FlairMap,
    change_path: Path,
    *,
    grid_role: str = "after",
    block_px: int = DEFAULT_BLOCK_PX,
    reporter: Reporter | None = None,
    pairs_path: Path | None = None,
) -> ChangeResult:
    """Compare `before` with `after` block by block, writing the change raster at `change_path`.

    Args:
        before, after: the two maps (from `open_flair_map`).
        change_path: the change GeoTIFF to write (uint16, tiled, DEFLATE, nodata 0).
        grid_role: "after" (default) or "before": whose grid the comparison and outputs use.
        block_px: block side in pixels; memory is a few arrays of this size.
        reporter: progress (one unit per block) and cancellation between blocks.
        pairs_path: where to write the raster of every compared pixel's pair, if wanted.

    Raises:
        InvalidInput: the maps do not overlap, a map holds values that are no FLAIR code
            (naming the file), or no pixel has a class in both maps.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from engine.figures.maps import check_codes

    reporter = reporter or Reporter()
    base, other = comparison_maps(before, after, grid_role)
    grid = _grid_of(base)
    aligned = not grid.same_as(_grid_of(other))
    reporter.log(describe_alignment(base, other, grid_role, aligned))
    counts = np.zeros(MATRIX_SIZE * MATRIX_SIZE, dtype=np.int64)
    profile = _profile(grid, _tile_px(block_px))
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), ExitStack() as stack:
        base_src = stack.enter_context(rasterio.open(base.path))
        other_src = stack.enter_context(rasterio.open(other.path))
        if aligned:
            other_src = stack.enter_context(
                WarpedVRT(
                    other_src,
                    crs=grid.crs,
                    transform=grid.transform,
                    width=grid.width,
                    height=grid.height,
                    resampling=Resampling.nearest,
                    src_nodata=other_src.nodata,
                    nodata=other.nodata,
                )
            )
        outputs = [(stack.enter_context(rasterio.open(change_path, "w", **profile)), True)]
        if pairs_path is not None:
            outputs.append((stack.enter_context(rasterio.open(pairs_path, "w", **profile)), False))
        reporter.start("change", total=grid.num_blocks(block_px), unit="blocks")
        for window in grid.blocks(block_px):
            reporter.check_cancelled()
            base_codes = base_src.read(1, window=window)
            other_codes = other_src.read(1, window=window)
            check_codes(base_codes, base.path, base.nodata)
            check_codes(other_codes, other.path, other.nodata)
            valid = _valid(base_codes, base.nodata) & _valid(other_codes, other.nodata)
            b, a = (other_codes, base_codes) if grid_role == "after" else (base_codes, other_codes)
            b, a = b.astype(np.uint16), a.astype(np.uint16)  # codes <= 19: 19 * 100 + 19 fits
            counts += np.bincount((b * MATRIX_SIZE + a)[valid], minlength=MATRIX_SIZE**2)
            code = np.where(valid, b * CHANGE_FACTOR + a, 0).astype(np.uint16)
            for dst, changes_only in outputs:
                block = np.where(b != a, code, 0).astype(np.uint16) if changes_only else code
                dst.write(block, 1, window=window)
            reporter.advance(1)
        for dst, changes_only in outputs:
            encoding = CHANGE_ENCODING if changes_only else PAIRS_ENCODING
            dst.set_band_description(1, f"land-cover change: {encoding}")
            dst.update_tags(
                CHANGE_ENCODING=encoding,
                BEFORE=str(before.path),
                AFTER=str(after.path),
                GRID=f"{grid_role} map's grid",
            )
    transitions = Transitions(counts.reshape(MATRIX_SIZE, MATRIX_SIZE), base.pixel_area_m2)
    if transitions.compared_px == 0:
        raise InvalidInput(
            f"no pixel has a class in both {file_name(before.path)} and "
            f"{file_name(after.path)}: where they overlap, one of them is no data"
        )
    return ChangeResult(transitions, grid, grid_role, aligned)


def write_transitions_csv(path: Path, transitions: Transitions) -> None:
    """The matrix of areas in hectares: rows the before classes, columns the after classes
    (codes 1..19, headed by class names); the diagonal is the unchanged area."""
    areas_ha = transitions.areas_m2 / 10_000.0
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["before \\ after (ha)", *(class_name(c) for c in CODES)])
        for b in CODES:
            w.writerow([class_name(b), *(f"{areas_ha[b, a]:.6f}" for a in CODES)])


@dataclass(frozen=True, eq=False)
class ZoneTransitions:
    """Per zone, the areas in m² `areas_m2[zone, before, after]` of its compared pixels, each
    pixel counted by the fraction of it inside the zone."""

    zone: tuple[Any, ...]  # the value of the zones' field, else the feature id
    areas_m2: np.ndarray  # (zones, 20, 20)


def zone_transitions(
    pairs_path: Path,
    grid: Grid,
    zones: geopandas.GeoDataFrame,
    field: str | None = None,
    reporter: Reporter | None = None,
) -> ZoneTransitions:
    """Measure the pairs raster of `compute_change` in each zone (any CRS) with exactextract.

    Zones are reprojected to the grid's CRS, taken one at a time and read in pieces of at most
    `MAX_CELLS_IN_MEMORY` pixels; a zone outside the maps is kept with zero areas.

    Raises:
        InvalidInput: `field` is not a column of the zones.
        Cancelled: a stop was asked for.
    """
    import rasterio
    from exactextract import exact_extract
    from exactextract.raster import RasterioRasterSource

    reporter = reporter or Reporter()
    names = zone_names(zones, field)
    t = grid.transform
    if t.b != 0 or t.d != 0:
        raise InvalidInput(
            "the comparison grid is rotated, which per-zone figures cannot measure; warp the map "
            "north-up first (gdalwarp without options does)"
        )
    geometries = zones_in_crs(zones, grid.crs, "the maps")
    n = len(geometries)
    areas = np.zeros((n, MATRIX_SIZE, MATRIX_SIZE), dtype=np.float64)
    pixel_area_m2 = abs(t.a * t.e)
    reporter.start("zones", total=n, unit="zones")
    # neighbours one after another (Hilbert order), with a cache large enough that the blocks
    # a zone shares with the next are not read again (as `zones` does)
    order = neighbours_in_turn(geometries)
    with rasterio.Env(GDAL_CACHEMAX=ZONES_CACHE_BYTES), rasterio.open(pairs_path) as ds:
        source = RasterioRasterSource(ds)  # nodata 0 (not compared) is left out
        for i in order:
            reporter.check_cancelled()
            if not geometries.iloc[i].is_empty:
                found = exact_extract(
                    source,
                    geometries.iloc[[i]].to_frame("geometry"),
                    ["unique", "frac", "count"],
                    max_cells_in_memory=MAX_CELLS_IN_MEMORY,
                )[0]["properties"]
                inside_m2 = float(found["count"]) * pixel_area_m2
                values = np.asarray(found["unique"], dtype=np.int64)
                shares = np.asarray(found["frac"], dtype=np.float64)
                before, after = values // CHANGE_FACTOR, values % CHANGE_FACTOR
                np.add.at(areas[i], (before, after), shares * inside_m2)
            reporter.advance()
    return ZoneTransitions(names, areas)
