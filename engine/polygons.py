"""Turning a land-cover map into polygons, block by block so memory stays bounded.

Polygons are built per block of `block_px` pixels and appended to the output file, so a
polygon that crosses a block edge is split there (each part keeps its class); the blocks
are large enough that this affects few polygons.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import shapes

from engine.classes import class_name
from engine.errors import Cancelled, OutputError
from engine.failures import write_failure
from engine.grid import Grid

# single-file formats only: the file is written under its claimed temporary name and the run's
# commit renames it
POLYGON_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".fgb": "FlatGeobuf"}


def polygonize(
    raster: Path,
    path: Path,
    temp: Path,
    block_px: int = 4096,
    advance: Callable[[], None] | None = None,
) -> int:
    """Write one polygon per connected patch of a class (code, name, area_m2) into `temp`, the
    name `path` claimed (layer named after `path`); return the count. `advance` is called after
    each block and may raise to stop (cancellation)."""
    import geopandas as gpd
    from shapely.geometry import shape

    path, temp = Path(path), Path(temp)
    driver = POLYGON_DRIVERS[path.suffix.lower()]
    total = 0
    try:
        with rasterio.open(raster) as src:
            crs = src.crs
            for window in Grid.of(src).blocks(block_px):
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
    except (Cancelled, OutputError):
        raise
    except OSError as exc:
        raise write_failure(exc, path) from None
    except Exception as exc:  # pyogrio's DataSourceError and friends carry GDAL's text
        raise write_failure(exc, path) from None
    return total
