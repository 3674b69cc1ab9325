"""Code rasters and zones layers written with QGIS's own GDAL/OGR, for the plugin tests of
`flair:zones` and `flair:change`."""

from __future__ import annotations

from pathlib import Path

from osgeo import gdal, ogr, osr
from qgis.core import (
    QgsFeature,
    QgsVectorLayer,
)

ORIGIN = (652000.0, 6862000.0)  # Lambert-93, as the fixtures of conftest
FAST = {"DEVICE": 1, "TILE_SIZE": 256, "MARGIN": 32}


def write_codes(path: Path, rows: list[list[int]], res_m: float = 0.2) -> str:
    """A one-band GeoTIFF of FLAIR codes (0 = no data) in EPSG:2154 at `ORIGIN`."""
    height, width = len(rows), len(rows[0])
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((ORIGIN[0], res_m, 0.0, ORIGIN[1], 0.0, -res_m))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(2154)
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(0)
    band.WriteRaster(0, 0, width, height, bytes(v for row in rows for v in row))
    ds = None
    return str(path)


def box(x0: float, y0: float, x1: float, y1: float) -> str:
    """A rectangle in metres from `ORIGIN` (x to the east, y to the south), as WKT."""
    (ox, oy) = ORIGIN
    left, right, top, bottom = ox + x0, ox + x1, oy - y0, oy - y1
    return (
        f"POLYGON (({left} {bottom}, {right} {bottom}, {right} {top}, {left} {top}, "
        f"{left} {bottom}))"
    )


# 64 x 64 px at 0.2 m = 12.8 m square: left half building (1), right half deciduous (7)
ZONES = {
    "west": box(0.0, 0.0, 6.4, 12.8),  # the building half: 81.92 m2
    "whole": box(0.0, 0.0, 12.8, 12.8),  # both halves
    "east_beyond": box(9.6, 0.0, 19.6, 12.8),  # 3.2 m inside the map, 6.8 m beyond it
}


def write_zones(path: Path, zones: dict[str, str]) -> str:
    """A GeoPackage of polygons (layer "communes") with a text field `name`."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(2154)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("communes", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    for name, wkt in zones.items():
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("name", name)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    ds = None
    return str(path)


def halves_map(path: Path) -> str:
    return write_codes(path, [[1 if c < 32 else 7 for c in range(64)] for _ in range(64)])


def by_name(layer: QgsVectorLayer) -> dict[str, QgsFeature]:
    return {f["name"]: f for f in layer.getFeatures()}


def two_dates(tmp_path: Path) -> tuple[str, str]:
    """1 m pixels, 64 x 64. Before: columns 0-15 building, the rest herbaceous (10). After:
    columns 0-31 building. Land take: 16 x 64 m2 = 0.1024 ha of herbaceous -> building."""
    before = [[1 if c < 16 else 10 for c in range(64)] for _ in range(64)]
    after = [[1 if c < 32 else 10 for c in range(64)] for _ in range(64)]
    return (
        write_codes(tmp_path / "before.tif", before, res_m=1.0),
        write_codes(tmp_path / "after.tif", after, res_m=1.0),
    )
