"""Reading a layer of zones (communes, parcels, any polygons) for figures from maps.

Zones come from any OGR vector file in any CRS; they are returned as read, in their own CRS,
with their attributes, indexed by feature id, so outputs can carry them back unchanged. A layer
without polygons or without a CRS is refused in one line naming the file: areas per zone of
points, or of polygons placed nowhere, would be wrong figures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import InputNotFound, InvalidInput
from engine.failures import file_name, is_gdal_path

if TYPE_CHECKING:
    import geopandas
    import pandas
    from rasterio.crs import CRS

    from engine.progress import Reporter

POLYGON_TYPES = ("Polygon", "MultiPolygon")


def read_zones(path: Path, layer: str | None = None) -> geopandas.GeoDataFrame:
    """The polygons of `layer` of the vector file at `path` (its only layer when None).

    Features with no geometry, or an empty one, are kept: they are zones of zero area. The
    frame is indexed by feature id (FID) and keeps the layer's CRS and attributes.

    Raises:
        InputNotFound: no such file.
        InvalidInput: not a vector file OGR reads, no such layer, several layers and none
            chosen, a layer without polygons or holding points or lines, or without a CRS.
    """
    import pyogrio

    name = file_name(path)
    if not is_gdal_path(path) and not Path(path).exists():
        raise InputNotFound(f"zones {path} does not exist", path=str(path))
    source = os.fspath(path)
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(source)]
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise InvalidInput(
            f"zones {name} is not a vector file OGR can read ({str(exc).split(';')[0]})"
        ) from None
    if layer is None and len(layers) > 1:
        raise InvalidInput(
            f"zones {name} has {len(layers)} layers ({_listed(layers)}); choose one with --layer",
            option="--layer",
        )
    if layer is not None and layer not in layers:
        raise InvalidInput(
            f"zones {name} has no layer {layer!r}; its layers: {_listed(layers)}", option="--layer"
        )
    if not layers:
        raise InvalidInput(f"zones {name} holds no layer; give a file of polygons")
    chosen = layer if layer is not None else layers[0]
    try:
        frame = pyogrio.read_dataframe(source, layer=chosen, fid_as_index=True)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise InvalidInput(f"zones {name}: layer {chosen!r} cannot be read ({exc})") from None
    _check_zones(frame, f"zones {name}" + (f" (layer {chosen})" if len(layers) > 1 else ""))
    return frame


def _check_zones(frame: geopandas.GeoDataFrame, label: str) -> None:
    import geopandas as gpd

    if not isinstance(frame, gpd.GeoDataFrame):
        raise InvalidInput(f"{label} is a table without geometries; give a layer of polygons")
    geometry = frame.geometry
    present = geometry.notna() & ~geometry.is_empty
    types = geometry[present].geom_type
    others = sorted(set(types) - set(POLYGON_TYPES))
    if others:
        raise InvalidInput(
            f"{label} holds {', '.join(others)} geometries; zones must be polygons "
            "(buffer points or lines into polygons first)"
        )
    if not present.any():
        raise InvalidInput(f"{label} holds no polygons; give a layer of polygons")
    if frame.crs is None:
        raise InvalidInput(
            f"{label} has no CRS; assign one (QGIS: Assign projection, or ogr2ogr -a_srs)"
        )


def check_field(zones: geopandas.GeoDataFrame, field: str, label: str = "the zones") -> None:
    """Refuse a `field` that is not an attribute of `zones`, listing those it has."""
    fields = [str(c) for c in zones.columns if c != zones.geometry.name]
    if field not in fields:
        raise InvalidInput(
            f"{label} have no field {field!r}; their fields: {_listed(fields)}", option="--field"
        )


def zone_names(zones: geopandas.GeoDataFrame, field: str | None) -> tuple[Any, ...]:
    """Each zone's name: the value of `field`, else its feature id, as plain Python values.

    Raises:
        InvalidInput: `field` is not an attribute of the zones, naming those there are.
    """
    if field is None:
        return tuple(_plain(v) for v in zones.index)
    check_field(zones, field)
    return tuple(_plain(v) for v in zones[field])


def zones_in_crs(zones: geopandas.GeoDataFrame, crs: CRS, where: str) -> geopandas.GeoSeries:
    """The zones' polygons in `crs` (that of `where`, e.g. "the map"), for measuring: null
    geometries empty, invalid ones repaired to their polygons; the zones themselves unchanged.

    Raises:
        InvalidInput: the zones have no CRS, or some cannot be placed in `crs`.
    """
    import shapely

    if zones.crs is None:
        raise InvalidInput("the zones have no CRS; assign one (QGIS: Assign projection)")
    geometry = zones.geometry.copy()
    geometry[geometry.isna()] = shapely.Polygon()
    if zones.crs != crs:
        geometry = geometry.to_crs(crs)
    if not np.isfinite(shapely.get_coordinates(geometry.to_numpy())).all():
        raise InvalidInput(
            f"some zones cannot be placed in the CRS of {where}, {crs.to_string()} (they reach "
            f"outside where it is defined); keep only the zones near {where}"
        )
    invalid = ~geometry.is_valid
    if invalid.any():
        geometry[invalid] = [_polygons(shapely.make_valid(g)) for g in geometry[invalid]]
    return geometry


def write_zones_with(
    zones: geopandas.GeoDataFrame,
    figures: pandas.DataFrame,
    temp: Path,
    path: Path,
    reporter: Reporter,
    layer: str = "zones",
) -> None:
    """The zones as given (CRS, geometry, attributes) plus one row of `figures` each, as
    `layer` of a GeoPackage written at `temp` for `path`; a field of the zones named like a
    figure (case aside) gives way to it, with a warning."""
    import geopandas as gpd

    from engine.failures import write_failure

    added = {str(c).lower() for c in figures.columns}
    geometry_name = zones.geometry.name
    replaced = [c for c in zones.columns if c != geometry_name and str(c).lower() in added]
    if replaced:
        reporter.log(
            f"the zones' fields {', '.join(map(str, replaced))} are replaced by the figures of "
            "the same name",
            "WARNING",
        )
    kept = zones.drop(columns=replaced).reset_index(drop=True)
    frame = gpd.GeoDataFrame(kept.join(figures), geometry=geometry_name, crs=zones.crs)
    try:
        frame.to_file(temp, layer=layer, driver="GPKG", engine="pyogrio", index=False)
    except Exception as exc:  # pyogrio's DataSourceError and friends carry GDAL's text
        raise write_failure(exc, path) from exc


def neighbours_in_turn(geometries: geopandas.GeoSeries) -> np.ndarray:
    """Positions of `geometries` in an order that visits neighbours one after another (a
    Hilbert curve over their bounds), empty ones first: zones measured in this order read the
    map blocks they share while these are still in GDAL's cache."""
    empty = np.asarray(geometries.is_empty | geometries.isna())
    placed = np.flatnonzero(~empty)
    if not len(placed):
        return np.flatnonzero(empty)
    distance = geometries.iloc[placed].hilbert_distance().to_numpy()
    return np.concatenate([np.flatnonzero(empty), placed[np.argsort(distance, kind="stable")]])


def _polygons(geometry: Any) -> Any:
    """The polygons of a repaired geometry (make_valid may add lines and points)."""
    import shapely

    parts = [p for p in shapely.get_parts(geometry) if p.geom_type in POLYGON_TYPES]
    return shapely.unary_union(parts) if parts else shapely.Polygon()


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (for JSON, CSV and GeoPackage fields)."""
    return value.item() if isinstance(value, np.generic) else value


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:10]) or "none"
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")
