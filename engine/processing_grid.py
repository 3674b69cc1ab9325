"""Choosing the grid the model runs on: the model's resolution in a metric CRS.

Projected rasters keep their CRS (and their pixel alignment when already at the model's
resolution). Geographic rasters, and projections whose units are far from ground metres at the
raster (Web Mercator away from the equator), are processed in the UTM zone of the raster's
centre, so 0.2 m means 0.2 m on the ground.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyproj import CRS as ProjCRS
from pyproj import Proj, Transformer
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from engine.grid import Bounds, Grid

SCALE_TOLERANCE = 0.01  # 1 %: beyond this a CRS unit is not a ground metre


@dataclass(frozen=True)
class ProcessingGrid:
    """The grid to run the model on and why it was chosen."""

    grid: Grid
    same_as_source: bool  # pixels coincide with the source's: plain reads, no warping
    reason: str


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone containing a point."""
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def ground_scale(crs: CRS, lon: float, lat: float) -> float:
    """How many ground metres one CRS unit is at a point (1.0 for a good local projection)."""
    proj_crs = ProjCRS.from_wkt(crs.to_wkt())
    if not proj_crs.is_projected:
        return float("nan")
    unit = proj_crs.axis_info[0].unit_conversion_factor
    factors = Proj(proj_crs).get_factors(lon, lat)
    return unit / factors.meridional_scale


def _centre_lonlat(crs: CRS, bounds: Bounds) -> tuple[float, float]:
    x = (bounds[0] + bounds[2]) / 2
    y = (bounds[1] + bounds[3]) / 2
    to_wgs = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(x, y)
    return float(lon), float(lat)


def choose_processing_grid(
    src_crs: CRS | None, src_grid: Grid, res_m: float, force_crs: CRS | None = None
) -> ProcessingGrid:
    """The processing grid covering a source raster at `res_m` ground metres."""
    if src_crs is None:
        from engine.errors import InvalidInput

        raise InvalidInput(
            "the input raster has no CRS; assign one (e.g. in QGIS or with gdal_edit.py -a_srs)"
        )
    lon, lat = _centre_lonlat(src_crs, src_grid.bounds)
    if force_crs is not None:
        crs, reason = force_crs, f"processing in {force_crs.to_string()} as requested"
    elif src_crs.is_geographic:
        crs = utm_crs_for(lon, lat)
        reason = f"the input is in geographic coordinates: processing in {crs.to_string()} (UTM)"
    else:
        scale = ground_scale(src_crs, lon, lat)
        if abs(scale - 1.0) > SCALE_TOLERANCE:
            crs = utm_crs_for(lon, lat)
            reason = (
                f"one unit of {src_crs.to_string()} is {scale:.3f} m on the ground here: "
                f"processing in {crs.to_string()} (UTM) at true {res_m} m"
            )
        else:
            crs = src_crs
            reason = f"processing in the input's CRS {src_crs.to_string()}"
    if crs == src_crs:
        same_res = (
            abs(src_grid.res_m - res_m) <= 1e-6 * res_m
            and abs(abs(src_grid.transform.e) - res_m) <= 1e-6 * res_m
        )
        if same_res and src_grid.transform.b == 0 and src_grid.transform.d == 0:
            return ProcessingGrid(src_grid, True, reason + f" on its own {res_m} m pixels")
        anchor = (src_grid.transform.c, src_grid.transform.f)
        grid = Grid.covering(crs, src_grid.bounds, res_m, anchor_xy=anchor)
        return ProcessingGrid(
            grid, False, reason + f", resampled from {src_grid.res_m:g} to {res_m} m on the fly"
        )
    bounds = transform_bounds(src_crs, crs, *src_grid.bounds, densify_pts=21)
    grid = Grid.covering(crs, bounds, res_m)
    return ProcessingGrid(grid, False, reason + ", reprojected on the fly")
