"""Turning a land-cover map into polygons, block by block so memory stays bounded.

Polygons are built per block of `block_px` pixels and appended to the output file, so a
polygon that crosses a block edge is split there (each part keeps its class); the blocks
are large enough that this affects few polygons.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import shapes
from rasterio.windows import Window

from engine.classes import class_name
from engine.errors import OutputError

# single-file formats only: the file is written under a temporary name and renamed at the end
POLYGON_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".fgb": "FlatGeobuf"}


def polygonize(
    raster: Path, path: Path, block_px: int = 4096, advance: Callable[[], None] | None = None
) -> int:
    """Write one polygon per connected patch of a class (code, name, area_m2); return the count."""
    import geopandas as gpd
    from shapely.geometry import shape

    path = Path(path)
    driver = POLYGON_DRIVERS[path.suffix.lower()]
    temp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    total = 0
    try:
        with rasterio.open(raster) as src:
            crs = src.crs
            for row in range(0, src.height, block_px):
                for col in range(0, src.width, block_px):
                    window = Window(
                        col, row, min(block_px, src.width - col), min(block_px, src.height - row)
                    )
                    codes = src.read(1, window=window)
                    geoms, values = [], []
                    for geom, value in shapes(
                        codes, mask=codes > 0, transform=src.window_transform(window)
                    ):
                        geoms.append(shape(geom))
                        values.append(int(value))
                    if advance:
                        advance()
                    if not geoms:
                        continue
                    frame = gpd.GeoDataFrame(
                        {
                            "code": np.array(values, dtype=np.int16),
                            "name": [class_name(v) for v in values],
                        },
                        geometry=geoms,
                        crs=crs.to_wkt(),
                    )
                    frame["area_m2"] = frame.geometry.area.round(3)
                    frame.to_file(
                        temp, layer=path.stem, driver=driver, append=temp.exists(), engine="pyogrio"
                    )
                    total += len(frame)
        if total == 0:
            empty = gpd.GeoDataFrame(
                {"code": [], "name": [], "area_m2": []}, geometry=[], crs=crs.to_wkt()
            )
            empty.to_file(temp, layer=path.stem, driver=driver, engine="pyogrio")
        os.replace(temp, path)
    except Exception as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"could not write polygons to {path}: {exc}") from exc
    return total
