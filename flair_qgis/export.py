"""Handing the engine a file: layers that are not plain GDAL files are exported first.

The engine reads files with its own GDAL (inside rasterio), so it can only use layers that are
ordinary local raster files. Everything else (WMS/XYZ, virtual rasters, in-memory GDAL datasets,
VRTs that may point at sources the engine cannot read) is written by QGIS's own raster writer to
a temporary GeoTIFF covering the requested extent at the model's resolution.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProviderRegistry,
    QgsRasterBlockFeedback,
    QgsRasterFileWriter,
    QgsRasterLayer,
    QgsRasterPipe,
    QgsRasterProjector,
    QgsRectangle,
)

from .compat import ARGB_TYPES, WRITE_OK, set_creation_options

# Formats the engine's GDAL reads directly; anything else goes through the export.
DIRECT_SUFFIXES = {".tif", ".tiff", ".jp2", ".img", ".png", ".jpg", ".jpeg"}
WEB_MERCATOR = {"EPSG:3857", "EPSG:900913", "EPSG:3785"}


class ExportPlan(NamedTuple):
    """The grid of a temporary export: extent in `crs`, size in pixels."""

    crs: QgsCoordinateReferenceSystem
    extent: QgsRectangle
    width_px: int
    height_px: int

    @property
    def pixels(self) -> int:
        return self.width_px * self.height_px


def layer_file_path(layer: QgsRasterLayer) -> Path | None:
    """The local file behind a layer when the engine can read it as it is, else None."""
    if layer.providerType() != "gdal":
        return None
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    path = str(parts.get("path") or "")
    if not path or path.startswith("/vsi") or parts.get("layerName"):
        return None
    file = Path(path)
    if not file.is_file() or file.suffix.lower() not in DIRECT_SUFFIXES:
        return None
    return file.resolve()  # the engine runs in another working directory


def is_rgba_image(layer: QgsRasterLayer) -> bool:
    """True for rendered-image sources (WMS, XYZ): one ARGB band, exported as RGBA bytes."""
    return layer.dataProvider().dataType(1) in ARGB_TYPES


def utm_crs(crs: QgsCoordinateReferenceSystem, area: QgsRectangle) -> QgsCoordinateReferenceSystem:
    """The WGS 84 / UTM zone holding the centre of `area` (given in `crs`)."""
    to_wgs84 = QgsCoordinateTransform(
        crs, QgsCoordinateReferenceSystem("EPSG:4326"), QgsCoordinateTransformContext()
    )
    centre = to_wgs84.transform(QgsPointXY(area.center()))
    zone = min(60, max(1, int((centre.x() + 180.0) // 6.0) + 1))
    base = 32600 if centre.y() >= 0 else 32700
    return QgsCoordinateReferenceSystem(f"EPSG:{base + zone}")


def plan_export(layer: QgsRasterLayer, extent: QgsRectangle | None, res_m: float) -> ExportPlan:
    """The export grid: the layer's CRS when it is projected in metres (not Web Mercator, whose
    metres are not ground metres), otherwise the UTM zone of the area; extent clipped to the
    layer; square `res_m` pixels."""
    source = layer.crs()
    area = layer.extent() if extent is None or extent.isNull() else extent.intersect(layer.extent())
    if area.isEmpty():
        raise QgsProcessingException("The requested extent does not overlap the input layer.")
    crs = source
    if source.isGeographic() or source.authid() in WEB_MERCATOR:
        crs = utm_crs(source, area)
        transform = QgsCoordinateTransform(source, crs, QgsCoordinateTransformContext())
        area = transform.transformBoundingBox(area)
    width = max(1, math.ceil(area.width() / res_m - 1e-6))
    height = max(1, math.ceil(area.height() / res_m - 1e-6))
    snapped = QgsRectangle(
        area.xMinimum(),
        area.yMaximum() - height * res_m,
        area.xMinimum() + width * res_m,
        area.yMaximum(),
    )
    return ExportPlan(crs, snapped, width, height)


def check_budget(plan: ExportPlan, limit_px: int, res_m: float) -> None:
    """Refuse an export larger than `limit_px`, with the numbers."""
    if limit_px > 0 and plan.pixels > limit_px:
        raise QgsProcessingException(
            f"Exporting this layer at {res_m:g} m would need {plan.width_px} x {plan.height_px}"
            f" = {plan.pixels:,} pixels, more than the limit of {limit_px:,}. Choose a smaller "
            "extent, raise EXPORT_PIXEL_LIMIT (or the setting flair_qgis/export_pixel_limit), "
            "or save the layer as a GeoTIFF first."
        )


def export_layer(
    layer: QgsRasterLayer,
    plan: ExportPlan,
    path: Path,
    feedback: QgsProcessingFeedback | None = None,
) -> Path:
    """Write `layer` over `plan` to a GeoTIFF at `path` with QGIS's raster writer."""
    provider = layer.dataProvider().clone()
    for setter in ("setZoomedInResamplingMethod", "setZoomedOutResamplingMethod"):
        method = getattr(type(provider), "ResamplingMethod", None)
        if method is not None and hasattr(provider, setter):
            getattr(provider, setter)(method.Bilinear)
    pipe = QgsRasterPipe()
    if not pipe.set(provider):
        raise QgsProcessingException(f"Cannot read layer {layer.name()} for export.")
    if plan.crs != layer.crs():
        projector = QgsRasterProjector()
        projector.setCrs(layer.crs(), plan.crs, QgsCoordinateTransformContext())
        pipe.set(projector)
    writer = QgsRasterFileWriter(str(path))
    writer.setOutputFormat("GTiff")
    set_creation_options(writer, ["COMPRESS=DEFLATE", "TILED=YES", "BIGTIFF=IF_SAFER"])
    block_feedback = QgsRasterBlockFeedback()
    if feedback is not None:
        feedback.canceled.connect(block_feedback.cancel)
        block_feedback.progressChanged.connect(feedback.setProgress)
    result = writer.writeRaster(
        pipe,
        plan.width_px,
        plan.height_px,
        plan.extent,
        plan.crs,
        QgsCoordinateTransformContext(),
        block_feedback,
    )
    if result != WRITE_OK or not path.exists():
        raise QgsProcessingException(
            f"QGIS could not export layer {layer.name()} to {path} (raster writer error {result})."
        )
    return path
