"""Opening a finished land-cover map for figures: one band of FLAIR codes on a projected grid.

A map is taken as FLAIR-coded when its tags say so (what `predict` and `region` write), or when
it carries no nomenclature tags at all and holds integers (its values are then checked as they
are read: `check_codes`). Anything else is refused in one line naming the file and what was
found, since areas of another nomenclature under FLAIR class names would be wrong figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

from engine.classes import CLASS_BY_CODE, CODES, NODATA_CODE
from engine.errors import InputNotFound, InvalidInput
from engine.failures import file_name

FLAIR_TAG = "FLAIR nomenclature"
MAX_CODE = max(CODES)


@dataclass(frozen=True)
class FlairMap:
    """A FLAIR map's grid: where it is, in which CRS, and the ground area of one pixel."""

    path: Path
    crs: CRS
    transform: Affine
    width_px: int
    height_px: int
    nodata: int

    @property
    def pixel_area_m2(self) -> float:
        return abs(self.transform.a * self.transform.e - self.transform.b * self.transform.d)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the map's CRS."""
        left, top = self.transform * (0, 0)
        right, bottom = self.transform * (self.width_px, self.height_px)
        return min(left, right), min(bottom, top), max(left, right), max(bottom, top)


def open_flair_map(path: Path, role: str = "map") -> FlairMap:
    """The map at `path`, checked: one integer band, a projected CRS in metres, FLAIR codes.

    Raises:
        InputNotFound: no such file.
        InvalidInput: not a raster GDAL reads, several bands, floating-point values, no CRS or
            a geographic one, or tags of another nomenclature; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFound(f"{role} {path} does not exist", path=str(path))
    try:
        with rasterio.open(path) as src:
            found = _nomenclature_problem(src)
            grid = FlairMap(
                path=path,
                crs=src.crs,
                transform=src.transform,
                width_px=src.width,
                height_px=src.height,
                nodata=NODATA_CODE if src.nodata is None else int(src.nodata),
            )
            band_count, dtype = src.count, src.dtypes[0]
    except rasterio.errors.RasterioIOError as exc:
        name = file_name(path)
        raise InvalidInput(f"{role} {name} is not a raster GDAL can read ({exc})") from exc
    name = file_name(path)
    if band_count != 1:
        raise InvalidInput(f"{role} {name} has {band_count} bands; a FLAIR map has one band")
    if not np.issubdtype(np.dtype(dtype), np.integer):
        raise InvalidInput(f"{role} {name} holds {dtype} values; a FLAIR map holds integer codes")
    if found:
        raise InvalidInput(f"{role} {name} is not a FLAIR map: {found}")
    if grid.crs is None:
        raise InvalidInput(f"{role} {name} has no CRS; areas need one (assign it in QGIS or GDAL)")
    if not grid.crs.is_projected:
        raise InvalidInput(
            f"{role} {name} is in {grid.crs.to_string()}, a geographic CRS: areas need a "
            "projected one in metres (the maps of predict and region are)"
        )
    return grid


def _nomenclature_problem(src: rasterio.DatasetReader) -> str:
    """What says the map is of another nomenclature, or '' when nothing does."""
    classes = src.tags().get("CLASSES", "")
    if classes and not classes.startswith(FLAIR_TAG):
        return f'its CLASSES tag says "{classes}"'
    band_tags = src.tags(1) if src.count else {}
    for code, flair in CLASS_BY_CODE.items():
        named = band_tags.get(f"CLASS_{code}")
        if named is not None and named != flair.name:
            return f'code {code} is "{named}" there, "{flair.name}" in FLAIR'
    return ""


def check_codes(values: np.ndarray, path: Path, nodata: int = NODATA_CODE) -> None:
    """Refuse values that are no FLAIR code (0 or the map's nodata is no data), naming them."""
    bad = values[(values != nodata) & ((values < 1) | (values > MAX_CODE))]
    if bad.size:
        shown = ", ".join(str(v) for v in np.unique(bad)[:8])
        raise InvalidInput(
            f"{file_name(path)} is not a FLAIR map: it holds values {shown}, where FLAIR codes "
            f"are 1 to {MAX_CODE} (0 = no data)"
        )
