"""`flair:zones`: land-cover areas per zone (commune, parcel, any polygon) of a FLAIR map
(engine `zones`).

The engine reads the map block by block and writes the zones back with one field per class
(m², ha, % of the mapped area), plus an optional long table (one row per zone and class). The
zones layer is loaded, so it can be joined, styled and charted at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
    QgsProviderRegistry,
    QgsRasterLayer,
)

from ..classes import CITATION
from ..compat import TYPE_POLYGON
from ..engine_command import engine_command
from ..engine_locator import engine_environment, require_engine
from ..engine_progress import LOADING_PERCENT, STARTING_TEXT, ProgressMapper
from ..engine_runner import run_engine
from ..export import layer_file_path
from .base import FlairAlgorithm, engine_path


def map_file(layer: QgsRasterLayer | None, shown: str) -> str:
    """The file the engine reads for a land-cover map layer: a raster file as it is, or a
    region's VRT mosaic (the engine reads VRTs of its own making).

    Raises:
        QgsProcessingException: the layer is no local file (`shown` names the field).
    """
    path = layer_file_path(layer) if layer is not None else None
    if path is None and layer is not None and layer.providerType() == "gdal":
        parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
        candidate = Path(str(parts.get("path") or ""))
        if candidate.suffix.lower() == ".vrt" and candidate.is_file():
            path = candidate.resolve()
    if path is None:
        raise QgsProcessingException(
            f"{shown} must be a land-cover map saved as a file (GeoTIFF, or the VRT of a "
            "region); save the layer as a GeoTIFF first."
        )
    return str(path)


def zones_source(
    algorithm: QgsProcessingAlgorithm,
    parameters: dict[str, Any],
    name: str,
    context: QgsProcessingContext,
    feedback: QgsProcessingFeedback,
) -> tuple[str, str, str]:
    """(file, layer name or '', display name) of a polygon source for the engine. A layer that
    is not a GeoPackage or shapefile (memory, database, a selection, ...) is written to a
    temporary GeoPackage first."""
    path, layer = algorithm.parameterAsCompatibleSourceLayerPathAndLayerName(
        parameters, name, context, ["gpkg", "shp"], "gpkg", feedback
    )
    source = algorithm.parameterAsSource(parameters, name, context)
    shown = source.sourceName() if source is not None else ""
    return engine_path(path), layer or "", shown or Path(path).stem


def zones_arguments(
    map_path: str, zones: str, out: str, layer: str = "", field: str = "", table: str = ""
) -> list[str]:
    """The argument list of `engine zones`."""
    args = ["zones", map_path, "--zones", zones]
    if layer:
        args += ["--layer", layer]
    if field:
        args += ["--field", field]
    args += ["--out", out]
    if table:
        args += ["--csv", table]
    return args + ["--overwrite", "--progress", "json"]


class ZonesAlgorithm(FlairAlgorithm):
    """Class areas per zone of a FLAIR land-cover map, written back onto the zones."""

    MAP = "MAP"
    ZONES = "ZONES"
    FIELD = "FIELD"
    OUTPUT = "OUTPUT"
    TABLE = "TABLE"
    WORDS = {
        "--zones": "Zones (ZONES)",
        "--layer": "Zones (ZONES)",
        "--field": "Zone identifier field (FIELD)",
        "--out": "Zones with land cover (OUTPUT)",
        "--csv": "Table, one row per zone and class (TABLE)",
    }

    def name(self) -> str:
        return "zones"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Land-cover statistics by zone")

    def shortHelpString(self) -> str:  # noqa: N802
        return (
            "<p>Measures the land cover of each zone (communes, parcels, any polygons) on a "
            "FLAIR land-cover map, such as the output of FLAIR land-cover segmentation. The "
            "map is read block by block, so a whole region's map works too.</p><ul>"
            "<li><b>Land-cover map</b>: a map in FLAIR codes (0 is no data).</li>"
            "<li><b>Zones</b>: polygons in any CRS; only the selected features count when "
            "you tick <i>Selected features only</i>.</li>"
            "<li><b>Zone identifier field</b>: optional; the field that names each zone in "
            "the table (by default the feature id).</li>"
            "<li><b>Zones with land cover</b>: the zones with their own fields plus, for each "
            "zone, its area, the mapped area, the area without data and the area outside the "
            "map, and for each class its area in m² and ha and its share of the mapped area "
            "(for example <tt>building_ha</tt>, <tt>building_pct</tt>). It is loaded into the "
            "project, ready to join, style or chart.</li>"
            "<li><b>Table, one row per zone and class</b>: a CSV with the zone, the class code "
            "and name, the area in m² and ha and the percentage of the mapped area; left "
            "empty, it is written beside the zones with land cover.</li></ul>"
            f"<p>{CITATION}</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.MAP, "Land-cover map"))
        self.addParameter(QgsProcessingParameterFeatureSource(self.ZONES, "Zones", [TYPE_POLYGON]))
        self.addParameter(
            QgsProcessingParameterField(
                self.FIELD,
                "Zone identifier field",
                parentLayerParameterName=self.ZONES,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.OUTPUT, "Zones with land cover", TYPE_POLYGON
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.TABLE,
                "Table, one row per zone and class",
                "CSV files (*.csv)",
                optional=True,
                createByDefault=False,
            )
        )

    def processAlgorithm(  # noqa: N802
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        engine = require_engine(feedback)
        layer = self.parameterAsRasterLayer(parameters, self.MAP, context)
        map_path = map_file(layer, "Land-cover map (MAP)")
        zones, zones_layer, zones_name = zones_source(
            self, parameters, self.ZONES, context, feedback
        )
        field = (self.parameterAsString(parameters, self.FIELD, context) or "").strip()
        out = engine_path(self.parameterAsOutputLayer(parameters, self.OUTPUT, context))
        table = engine_path(self.parameterAsFileOutput(parameters, self.TABLE, context) or "")
        for target in (out, table):
            if target:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
        # without a table the engine still writes one, beside OUTPUT
        written_table = table or str(Path(out).with_suffix(".csv"))
        done = run_engine(
            engine_command(
                engine.python, zones_arguments(map_path, zones, out, zones_layer, field, table)
            ),
            feedback,
            [out, written_table],
            mapper=ProgressMapper({"zones": (LOADING_PERCENT, 100.0)}),
            env=engine_environment(engine.pythonpath),
            words=self.WORDS,
            loading_text=STARTING_TEXT,  # no model to load
        )
        outputs = done.get("outputs") or {}
        if context.willLoadLayerOnCompletion(out):
            details = context.layerToLoadOnCompletionDetails(out)
            details.name = f"{zones_name} - land cover by zone"
            details.forceName = True
        results = {self.OUTPUT: str(outputs.get("zones") or out)}
        written_table = str(outputs.get("table") or written_table)
        if Path(written_table).is_file():
            results[self.TABLE] = written_table
        return results
