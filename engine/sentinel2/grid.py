"""The 10 m grid a Sentinel-2 series is loaded onto, and windows inside it.

One grid covers the whole processing area plus half a super-patch on every side, in the
processing CRS, with its corners on multiples of the resolution (so a grid in a UTM zone lines
up with the Sentinel-2 tiles of that zone and needs no resampling of the 10 m bands).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from engine.errors import InvalidInput


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: top-left corner, square pixels, size in pixels."""

    crs: str
    x_min: float
    y_max: float
    res_m: float
    width_px: int
    height_px: int

    @classmethod
    def covering(
        cls,
        crs: str,
        bounds: tuple[float, float, float, float],
        res_m: float = 10.0,
        buffer_px: int = 20,
    ) -> Grid:
        """The aligned grid covering `bounds` (xmin, ymin, xmax, ymax) plus `buffer_px` pixels.

        Raises:
            InvalidInput: the bounds are empty or the CRS is not projected.
        """
        xmin, ymin, xmax, ymax = (float(v) for v in bounds)
        if not (xmax > xmin and ymax > ymin) or not all(map(math.isfinite, bounds)):
            raise InvalidInput(f"area bounds {bounds} are empty; give (xmin, ymin, xmax, ymax)")
        crs = normalise_crs(crs)
        x0 = math.floor(xmin / res_m) * res_m - buffer_px * res_m
        y1 = math.ceil(ymax / res_m) * res_m + buffer_px * res_m
        x1 = math.ceil(xmax / res_m) * res_m + buffer_px * res_m
        y0 = math.floor(ymin / res_m) * res_m - buffer_px * res_m
        return cls(crs, x0, y1, float(res_m), round((x1 - x0) / res_m), round((y1 - y0) / res_m))

    @property
    def shape(self) -> tuple[int, int]:
        """(height_px, width_px)."""
        return self.height_px, self.width_px

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the grid's CRS."""
        return (
            self.x_min,
            self.y_max - self.height_px * self.res_m,
            self.x_min + self.width_px * self.res_m,
            self.y_max,
        )

    def window(self, row_off: int, col_off: int, height_px: int, width_px: int) -> Grid:
        """The grid of a window of this grid."""
        return Grid(
            self.crs,
            self.x_min + col_off * self.res_m,
            self.y_max - row_off * self.res_m,
            self.res_m,
            width_px,
            height_px,
        )

    def centred_window(self, x: float, y: float, size_px: int) -> tuple[int, int]:
        """(row_off, col_off) of the `size_px` square whose centre is the pixel corner nearest
        to (x, y), as FLAIR crops ``[c - size/2 : c + size/2]`` around a centre index.

        Raises:
            InvalidInput: the square does not lie inside the grid.
        """
        col_c = round((x - self.x_min) / self.res_m)
        row_c = round((self.y_max - y) / self.res_m)
        half = size_px // 2
        row_off, col_off = row_c - half, col_c - half
        if (
            row_off < 0
            or col_off < 0
            or row_off + size_px > self.height_px
            or col_off + size_px > self.width_px
        ):
            raise InvalidInput(
                f"the {size_px} px super-patch around ({x:.1f}, {y:.1f}) leaves the Sentinel-2 "
                f"grid {self.bounds}; load the series for an area that contains this point"
            )
        return row_off, col_off

    def blocks(self, block_px: int) -> Iterator[tuple[int, int, int, int]]:
        """(row_off, col_off, height_px, width_px) of square blocks covering the grid, row-major."""
        for row in range(0, self.height_px, block_px):
            for col in range(0, self.width_px, block_px):
                yield (
                    row,
                    col,
                    min(block_px, self.height_px - row),
                    min(block_px, self.width_px - col),
                )

    def to_geobox(self):  # -> odc.geo.geobox.GeoBox (imported lazily)
        """This grid as an odc-geo GeoBox (for odc-stac)."""
        from affine import Affine
        from odc.geo.geobox import GeoBox

        transform = Affine(self.res_m, 0.0, self.x_min, 0.0, -self.res_m, self.y_max)
        return GeoBox((self.height_px, self.width_px), transform, self.crs)

    def lonlat_bounds(self) -> tuple[float, float, float, float]:
        """The grid's extent in longitude/latitude (densified edges), for STAC searches."""
        from pyproj import Transformer

        tr = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        return tr.transform_bounds(*self.bounds, densify_pts=21)

    def to_dict(self) -> dict[str, float | int | str]:
        """JSON form (cache metadata)."""
        return {
            "crs": self.crs,
            "x_min": self.x_min,
            "y_max": self.y_max,
            "res_m": self.res_m,
            "width_px": self.width_px,
            "height_px": self.height_px,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Grid:
        """Inverse of `to_dict`."""
        return cls(
            str(d["crs"]),
            float(d["x_min"]),
            float(d["y_max"]),
            float(d["res_m"]),
            int(d["width_px"]),
            int(d["height_px"]),
        )


def normalise_crs(crs: str) -> str:
    """``"epsg:2154"`` -> ``"EPSG:2154"``; WKT stays WKT. Geographic CRSs are refused.

    Raises:
        InvalidInput: the CRS is unknown or not projected.
    """
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        parsed = CRS.from_user_input(crs)
    except CRSError as exc:
        raise InvalidInput(f"unknown CRS {crs!r}: {exc}") from exc
    if not parsed.is_projected:
        raise InvalidInput(
            f"the Sentinel-2 grid needs a projected CRS in metres, not {parsed.name}; "
            "use the processing CRS (for example EPSG:2154 or a UTM zone)"
        )
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg else parsed.to_wkt()
