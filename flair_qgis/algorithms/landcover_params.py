"""The parameters of `flair:landcover`: names are public API, keep them stable."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..classes import CITATION, class_table_html
from ..compat import FLAG_ADVANCED, NUMBER_INTEGER, TYPE_POLYGON
from ..engine_command import DEVICES, OUTPUT_RESOLUTIONS, SENTINEL2_SOURCES
from ..models import DEFAULT_MODEL_INDEX, model_options
from ..settings import export_pixel_limit

HELP: dict[str, str] = {
    "INPUT": "Orthophoto (8-bit, ideally 0.2 m). Any raster layer: files are read directly, "
             "other layers (WMS, XYZ, VRT, virtual) are exported to a temporary GeoTIFF first.",
    "BAND_RED": "Band holding red. Empty: the band marked red, else band 1.",
    "BAND_GREEN": "Band holding green. Empty: the band marked green, else band 2.",
    "BAND_BLUE": "Band holding blue. Empty: the band marked blue, else band 3.",
    "BAND_NIR": "Band holding near infrared. Empty: the first other non-alpha band (band 4).",
    "BAND_ELEVATION": "Band of INPUT holding elevation (nDSM). Empty: the second other "
                      "non-alpha band (band 5). Ignored when ELEVATION is set.",
    "ELEVATION": "Separate elevation (nDSM) raster, for models using elevation (RGBIE).",
    "ELEVATION_BAND": "Band of ELEVATION to use (default 1).",
    "MODEL": "Registry model; its weights come from FLAIR_WEIGHTS_DIR, the Hugging Face cache, "
             "or are downloaded from the Hugging Face hub.",
    "MODEL_FILE": "Checkpoint file (.pth/.ckpt) to use instead of MODEL.",
    "MODEL_CARD": "Model card (JSON) describing MODEL_FILE (channels, classes, normalisation).",
    "EXTENT": "Only process this area. Empty: the whole layer.",
    "MASK": "Only process inside these polygons; the rest is no data.",
    "DEVICE": "auto uses CUDA when available, else the CPU.",
    "TILE_SIZE": "Tile size in pixels (0: the model's, 512).",
    "MARGIN": "Overlap margin in pixels around each tile's core (empty: the engine's default).",
    "BATCH_SIZE": "Tiles per batch (0: the engine's default).",
    "OUTPUT_RESOLUTION": "model: the map at the model's 0.2 m; input: on the input's own grid.",
    "EXPORT_PIXEL_LIMIT": "Largest temporary export of a non-file layer, in pixels.",
    "SENTINEL2_SOURCE": "Sentinel-2 time series for U-T&T models; ignored (with a warning) for "
                        "U-Net models.",
    "SENTINEL2_LOCATION": "STAC API URL (optionally #collection), catalogue file or FLAIR folder.",
    "YEAR": "Year of the Sentinel-2 series (default: the acquisition year of the orthophoto).",
    "ACQUISITION_DATE": "U-T&T: date the orthophoto was taken, YYYY-MM-DD (fills the model's "
                        "metadata and the default YEAR). Empty: the raster's ACQUISITION_DATE "
                        "or TIFFTAG_DATETIME tag.",
    "STRICT_SENTINEL2": "U-T&T: stop with an error at a tile without a usable Sentinel-2 date "
                        "(all cloudy or snowy, or not covered) instead of mapping it from the "
                        "aerial image alone.",
    "OUTPUT": "Land-cover map: GeoTIFF of FLAIR codes 1 to 19, 0 = no data, with colour table "
              "and a .qml style beside it.",
    "CONFIDENCE": "Optional confidence raster (probability of the winning class).",
    "STATS": "Optional class-area statistics (.json or .csv).",
    "POLYGONS": "Optional land-cover polygons (GeoPackage).",
}


class LandcoverParameters:
    """Parameter names as class constants and their definitions (mixed into the algorithm)."""

    INPUT = "INPUT"
    BAND_RED = "BAND_RED"
    BAND_GREEN = "BAND_GREEN"
    BAND_BLUE = "BAND_BLUE"
    BAND_NIR = "BAND_NIR"
    BAND_ELEVATION = "BAND_ELEVATION"
    ELEVATION = "ELEVATION"
    ELEVATION_BAND = "ELEVATION_BAND"
    MODEL = "MODEL"
    MODEL_FILE = "MODEL_FILE"
    MODEL_CARD = "MODEL_CARD"
    EXTENT = "EXTENT"
    MASK = "MASK"
    DEVICE = "DEVICE"
    TILE_SIZE = "TILE_SIZE"
    MARGIN = "MARGIN"
    BATCH_SIZE = "BATCH_SIZE"
    OUTPUT_RESOLUTION = "OUTPUT_RESOLUTION"
    EXPORT_PIXEL_LIMIT = "EXPORT_PIXEL_LIMIT"
    SENTINEL2_SOURCE = "SENTINEL2_SOURCE"
    SENTINEL2_LOCATION = "SENTINEL2_LOCATION"
    YEAR = "YEAR"
    ACQUISITION_DATE = "ACQUISITION_DATE"
    STRICT_SENTINEL2 = "STRICT_SENTINEL2"
    OUTPUT = "OUTPUT"
    CONFIDENCE = "CONFIDENCE"
    STATS = "STATS"
    POLYGONS = "POLYGONS"

    DEVICE_VALUES = DEVICES
    RESOLUTION_VALUES = OUTPUT_RESOLUTIONS
    SENTINEL2_VALUES = tuple(key for key, _ in SENTINEL2_SOURCES)

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        number = QgsProcessingParameterNumber
        integer = NUMBER_INTEGER
        params: list[tuple[QgsProcessingParameterDefinition, bool]] = [
            (QgsProcessingParameterRasterLayer(self.INPUT, "Orthophoto"), False),
            *[(QgsProcessingParameterBand(name, label, None, self.INPUT, True), False)
              for name, label in ((self.BAND_RED, "Red band"), (self.BAND_GREEN, "Green band"),
                                  (self.BAND_BLUE, "Blue band"),
                                  (self.BAND_NIR, "Near-infrared band"),
                                  (self.BAND_ELEVATION, "Elevation band of the orthophoto"))],
            (QgsProcessingParameterRasterLayer(self.ELEVATION, "Separate elevation raster",
                                               optional=True), False),
            (QgsProcessingParameterBand(self.ELEVATION_BAND, "Band of the elevation raster",
                                        None, self.ELEVATION, True), False),
            (QgsProcessingParameterEnum(self.MODEL, "Model", model_options(),
                                        defaultValue=DEFAULT_MODEL_INDEX), False),
            (QgsProcessingParameterFile(
                self.MODEL_FILE, "Model checkpoint (overrides Model)", optional=True,
                fileFilter="Checkpoints (*.pth *.ckpt *.pt)"), False),
            (QgsProcessingParameterFile(self.MODEL_CARD, "Model card (JSON)", optional=True,
                                        fileFilter="Model card (*.json)"), True),
            (QgsProcessingParameterExtent(self.EXTENT, "Extent", optional=True), False),
            (QgsProcessingParameterFeatureSource(
                self.MASK, "Mask polygons", [TYPE_POLYGON], optional=True),
             False),
            (QgsProcessingParameterEnum(self.DEVICE, "Device", ["auto", "CPU", "CUDA"],
                                        defaultValue=0), False),
            (number(self.TILE_SIZE, "Tile size (px)", integer, 0, False, 0, 8192), True),
            (number(self.MARGIN, "Margin (px)", integer, None, True, 0, 4096), True),
            (number(self.BATCH_SIZE, "Batch size", integer, 0, False, 0, 1024), True),
            (QgsProcessingParameterEnum(self.OUTPUT_RESOLUTION, "Output resolution",
                                        ["model (0.2 m)", "input"], defaultValue=0), True),
            (number(self.EXPORT_PIXEL_LIMIT, "Pixel limit for temporary exports", integer,
                    export_pixel_limit(), False, 0), True),
            (QgsProcessingParameterEnum(self.SENTINEL2_SOURCE, "Sentinel-2 source (U-T&T)",
                                        [label for _, label in SENTINEL2_SOURCES],
                                        defaultValue=0), False),
            (QgsProcessingParameterString(self.SENTINEL2_LOCATION,
                                          "Sentinel-2 location (URL or path)", optional=True),
             False),
            (number(self.YEAR, "Year of the Sentinel-2 series", integer, None, True, 2015, 2100),
             False),
            (QgsProcessingParameterString(self.ACQUISITION_DATE,
                                          "Acquisition date of the orthophoto (YYYY-MM-DD)",
                                          optional=True), False),
            (QgsProcessingParameterBoolean(self.STRICT_SENTINEL2,
                                           "Fail on tiles without a usable Sentinel-2 date",
                                           defaultValue=False), True),
            (QgsProcessingParameterRasterDestination(self.OUTPUT, "Land cover"), False),
            (QgsProcessingParameterRasterDestination(self.CONFIDENCE, "Confidence",
                                                     optional=True, createByDefault=False), False),
            (QgsProcessingParameterFileDestination(
                self.STATS, "Class statistics", "JSON (*.json);;CSV (*.csv)", optional=True,
                createByDefault=False), False),
            (QgsProcessingParameterVectorDestination(
                self.POLYGONS, "Land-cover polygons", TYPE_POLYGON,
                optional=True, createByDefault=False), False),
        ]
        for param, is_advanced in params:
            param.setHelp(HELP.get(param.name(), ""))
            if is_advanced:
                param.setFlags(param.flags() | FLAG_ADVANCED)
            if param.name() in (self.OUTPUT, self.CONFIDENCE, self.POLYGONS):
                param.setSupportsNonFileBasedOutput(False)
            self.addParameter(param)


def landcover_help() -> str:
    """The algorithm's help: what it does, its parameters, the legend, the citation."""
    params = "".join(f"<li><b>{k}</b>: {v}</li>" for k, v in HELP.items())
    return (
        "<p>Land-cover map of an orthophoto with IGN's FLAIR models (19-class FLAIR "
        "nomenclature), computed by the FLAIR engine in its own Python environment. Install "
        "it once with <i>Install or repair the FLAIR engine</i>.</p>"
        f"<ul>{params}</ul><p>Classes:</p>{class_table_html()}<p>{CITATION}</p>"
    )
