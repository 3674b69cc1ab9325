"""Class areas per zone: how much of each commune or parcel a FLAIR map says is built up,
sealed, wooded or farmed.

Areas are exact: a pixel on a zone's boundary counts by the fraction of it inside the zone
(exactextract's coverage fraction), not by whether its centre is inside. Zones are taken one at
a time, each read in pieces of at most `MAX_CELLS_IN_MEMORY` pixels, so a département map is
never read whole; overlapping zones are each counted fully, and a zone outside the map is kept
with no mapped area. A zone's area splits into three parts that add up to it:

    zone_m2 = mapped_m2 (codes 1..19) + nodata_m2 (code 0 or the map's nodata) + outside_m2

where `outside_m2` is the part beyond the map's extent. Zones are reprojected to the map's CRS
for computing, and every area is measured there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.classes import CODES, NODATA_CODE, class_name
from engine.errors import InvalidInput
from engine.failures import file_name, io_errors, read_failure
from engine.figures.maps import FlairMap, check_codes
from engine.figures.vectors import neighbours_in_turn, zone_names, zones_in_crs
from engine.progress import Reporter

if TYPE_CHECKING:
    import geopandas
    import pandas

MAX_CELLS_IN_MEMORY = 16_000_000  # pixels exactextract holds at once (1 byte each for a map)
# GDAL's block cache: larger than predict's 64 MB, since neighbouring zones read the same map
# blocks again (measured: a 64 MB cache made 500 communes 1.7x slower than one pass)
GDAL_CACHE_BYTES = 256 * 1024 * 1024
AREA_CODES: tuple[int, ...] = (NODATA_CODE, *CODES)  # the columns of `ZoneAreas.code_m2`
M2_PER_HA = 10_000.0
# zones measured per exactextract call: its fixed cost per call (about 0.03 s) paid once per
# chunk, progress and cancellation between chunks
ZONES_PER_CALL = 32
_OPS = ["unique", "frac", "count"]  # values, their coverage-weighted shares, covered pixels


def class_slug(code: int) -> str:
    """The field-name stem of a FLAIR class: `pervious surface` -> `pervious_surface`."""
    return class_name(code).replace(" ", "_")


@dataclass(frozen=True, eq=False)
class ZoneAreas:
    """Areas in m² in the map's CRS, one row per zone in the order of the zones given.

    `code_m2[:, 0]` is the no-data area inside the map's extent; `code_m2[:, i]` for i >= 1 is
    the area of FLAIR code i (`AREA_CODES`).
    """

    zone: tuple[Any, ...]  # the value of the zones' field, else the feature id
    zone_m2: np.ndarray  # (zones,)
    outside_m2: np.ndarray  # (zones,)
    code_m2: np.ndarray  # (zones, 20)

    @property
    def mapped_m2(self) -> np.ndarray:
        return self.code_m2[:, 1:].sum(axis=1)

    @property
    def nodata_m2(self) -> np.ndarray:
        return self.code_m2[:, 0]

    def percent_of_mapped(self) -> np.ndarray:
        """(zones, 19): each class's share of the zone's mapped area in percent, 0 if none."""
        mapped = self.mapped_m2[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(mapped > 0, 100.0 * self.code_m2[:, 1:] / mapped, 0.0)
        return share

    def wide(self) -> pandas.DataFrame:
        """One row per zone: `zone`, `zone_m2`, `mapped_m2`, `mapped_ha`, `nodata_m2`,
        `nodata_ha`, `outside_m2`, then `<slug>_m2`, `<slug>_ha`, `<slug>_pct` per class."""
        import pandas as pd

        columns: dict[str, Any] = {
            "zone": list(self.zone),
            "zone_m2": self.zone_m2,
            "mapped_m2": self.mapped_m2,
            "mapped_ha": self.mapped_m2 / M2_PER_HA,
            "nodata_m2": self.nodata_m2,
            "nodata_ha": self.nodata_m2 / M2_PER_HA,
            "outside_m2": self.outside_m2,
        }
        percent = self.percent_of_mapped()
        for i, code in enumerate(CODES):
            slug = class_slug(code)
            columns[f"{slug}_m2"] = self.code_m2[:, i + 1]
            columns[f"{slug}_ha"] = self.code_m2[:, i + 1] / M2_PER_HA
            columns[f"{slug}_pct"] = percent[:, i]
        return pd.DataFrame(columns)

    def long(self) -> pandas.DataFrame:
        """One row per zone and code 0..19: `zone`, `code`, `class`, `area_m2`, `area_ha`,
        `percent_of_mapped` (empty for code 0, which is not part of the mapped area)."""
        import pandas as pd

        n = len(self.zone)
        percent = np.concatenate([np.full((n, 1), np.nan), self.percent_of_mapped()], axis=1)
        return pd.DataFrame(
            {
                "zone": np.repeat(np.array(self.zone, dtype=object), len(AREA_CODES)),
                "code": np.tile(np.array(AREA_CODES), n),
                "class": [class_name(c) for c in AREA_CODES] * n,
                "area_m2": self.code_m2.ravel(),
                "area_ha": self.code_m2.ravel() / M2_PER_HA,
                "percent_of_mapped": percent.ravel(),
            }
        )


def zone_areas(
    flair_map: FlairMap,
    zones: geopandas.GeoDataFrame,
    field: str | None = None,
    reporter: Reporter | None = None,
) -> ZoneAreas:
    """The area of each class of `flair_map` in each zone of `zones` (any CRS).

    Args:
        flair_map: the map, opened and checked by `open_flair_map`.
        zones: polygons with a CRS (`read_zones`); null or empty geometries are zones of zero
            area. Features are named by `field`'s values, else by the frame's index (the
            feature ids `read_zones` gives).
        field: a column of `zones` naming each zone, or None.
        reporter: progress (`zones` phase, one unit per zone) and cancellation between zones.

    Raises:
        InvalidInput: `field` is not a column, the zones have no CRS or cannot be placed in the
            map's CRS, the map is rotated, or a zone covers values that are no FLAIR code.
        Cancelled: a stop was asked for.
    """
    import rasterio
    from exactextract import exact_extract

    reporter = reporter or Reporter()
    names = zone_names(zones, field)
    geometries = zones_in_crs(zones, flair_map.crs, "the map")
    t = flair_map.transform
    if t.b != 0 or t.d != 0:
        raise InvalidInput(
            f"map {file_name(flair_map.path)} is rotated; warp it north-up first "
            "(gdalwarp without options does)"
        )
    n = len(geometries)
    zone_m2 = np.asarray(geometries.area, dtype=np.float64)
    code_m2 = np.zeros((n, len(AREA_CODES)), dtype=np.float64)
    inside_m2 = np.zeros(n, dtype=np.float64)
    reporter.start("zones", total=n, unit="zones")
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), rasterio.open(flair_map.path) as ds:
            source = _unmasked_source()(ds)
            # neighbours one after another: the map blocks a zone shares with the next are
            # still in GDAL's cache, not read and decompressed again
            order = neighbours_in_turn(geometries)
            measured = order[zone_m2[order] > 0]
            if len(measured) < n:
                reporter.advance(n - len(measured))  # zones of no area: nothing to read
            for start in range(0, len(measured), ZONES_PER_CALL):
                reporter.check_cancelled()
                chunk = measured[start : start + ZONES_PER_CALL]
                found = exact_extract(
                    source,
                    geometries.iloc[chunk].to_frame("geometry"),
                    _OPS,
                    max_cells_in_memory=MAX_CELLS_IN_MEMORY,
                )
                for i, feature in zip(chunk, found, strict=True):
                    figures = feature["properties"]
                    inside_m2[i] = figures["count"] * flair_map.pixel_area_m2
                    values = np.asarray(figures["unique"], dtype=np.int64)
                    _check(values, flair_map)
                    shares = np.asarray(figures["frac"], dtype=np.float64)
                    code_m2[i] = _by_code(values, shares * inside_m2[i], flair_map.nodata)
                reporter.advance(len(chunk))
    except io_errors() as exc:
        raise read_failure(exc, flair_map.path) from exc
    outside_m2 = zone_m2 - inside_m2
    outside_m2[outside_m2 < 1e-9 * np.maximum(zone_m2, 1.0)] = 0.0  # rounding of a zone inside
    return ZoneAreas(zone=names, zone_m2=zone_m2, outside_m2=outside_m2, code_m2=code_m2)


def _check(values: np.ndarray, flair_map: FlairMap) -> None:
    """Refuse a value that is no FLAIR code (0 and the map's nodata are no data)."""
    check_codes(values[values != NODATA_CODE], flair_map.path, flair_map.nodata)


def _by_code(values: np.ndarray, area_m2: np.ndarray, nodata: int) -> np.ndarray:
    """Areas per value folded into `AREA_CODES` order; the map's nodata joins code 0."""
    out = np.zeros(len(AREA_CODES), dtype=np.float64)
    codes = np.where(values == nodata, NODATA_CODE, values)
    np.add.at(out, codes, area_m2)  # AREA_CODES is 0..19: a code is its own column
    return out


@cache
def _unmasked_source() -> type:
    """exactextract's rasterio source with nothing masked, so no data is counted too (as code
    0); built on first use, since exactextract is imported lazily."""
    from exactextract.raster import RasterioRasterSource

    class UnmaskedSource(RasterioRasterSource):
        def nodata_value(self) -> None:
            return None

        def read_window(self, x0: int, y0: int, nx: int, ny: int) -> np.ndarray:
            from rasterio.windows import Window

            return self.ds.read(self.band_idx, window=Window(x0, y0, nx, ny))

    return UnmaskedSource
