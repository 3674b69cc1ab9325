"""The parameters of `flair:landcover`: names are public API, keep them stable."""

from __future__ import annotations

import html
from functools import partial
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

from ..classes import CITATION, class_table_html, class_table_text
from ..compat import FLAG_ADVANCED, NUMBER_INTEGER, TYPE_POLYGON
from ..engine_command import (
    BACKEND_CHOICES,
    BACKENDS,
    DEVICES,
    OUTPUT_RESOLUTIONS,
    SENTINEL2_SOURCES,
)
from ..engine_shared import engine_module
from ..fields import BY_NAME
from ..fields import form_label as label
from ..models import DEFAULT_MODEL_INDEX, model_options
from ..settings import DEVICE_CHOICES, default_device, export_pixel_limit

BACKEND_HELP = (
    "Automatic: on the CPU, OpenVINO (faster) once the model, converted the first time and "
    "cached, gives the same logits as PyTorch on a test tile; else PyTorch, which also runs "
    "CUDA. The log says which ran and why."
)
OUTPUTS = engine_module("io.output_table")  # the engine's output table (plain Python)
# The engine's band rule (engine/io/bands.py), which completes the bands left empty: the plugin
# sends only the bands set here.
BAND_RULE = (
    "Empty: automatic. The bands set are kept; the others are found, in this order, by the "
    "band descriptions (red, green, blue, NIR, elevation, also in French: rouge, PIR, MNS...), "
    "then the colour interpretation (red, green, blue, near infrared), then the remaining "
    "bands in the order R, G, B, NIR, elevation. Alpha bands are never used."
)
HELP: dict[str, str] = {
    "INPUT": "Orthophoto (8-bit, ideally 0.2 m). Any raster layer: files are read directly, "
    "other layers (WMS, XYZ, VRT, virtual) are exported to a temporary GeoTIFF first.",
    "BAND_RED": f"Band holding red. {BAND_RULE}",
    "BAND_GREEN": f"Band holding green. {BAND_RULE}",
    "BAND_BLUE": f"Band holding blue. {BAND_RULE}",
    "BAND_NIR": f"Band holding near infrared. {BAND_RULE}",
    "BAND_ELEVATION": "Band of the orthophoto holding elevation (nDSM). Ignored when a "
    f"separate elevation raster is set. {BAND_RULE}",
    "ELEVATION": "Separate elevation (nDSM) raster, for models using elevation (RGBIE); aligned "
    "on the fly.",
    "ELEVATION_BAND": "Band of the separate elevation raster. Not set (automatic): band 1.",
    "MODEL": "Automatic: the best registered model the layer's bands (and the elevation raster) "
    "can feed whose weights are on this computer, named in the log with the reason and with "
    "any better model you could download; with none here, the best one is downloaded. Or a "
    "registered model; its weights come from the weights folder (Processing > Options > "
    "Providers > FLAIR), the Hugging Face cache, or are downloaded from the Hugging Face hub.",
    "MODEL_FILE": "Model checkpoint (.pth/.ckpt/.safetensors) to use instead of the model "
    "list, e.g. the official weights downloaded on another machine.",
    "MODEL_CARD": "Model card (JSON) describing the checkpoint (channels, classes, normalisation).",
    "EXTENT": "Only process this area. Empty: the whole layer.",
    "MASK": "Only process inside these polygons; the rest is no data.",
    "DEVICE": "Automatic uses CUDA when available, else the CPU (default: Processing > Options "
    "> Providers > FLAIR).",
    "BACKEND": BACKEND_HELP,
    "TILE_SIZE": "Tile size in pixels, a multiple of 32. 0: automatic (the engine's 1280, "
    "or the model's own: 512 for U-T&T, 1024 for FLAIR-HUB and MiT-B5).",
    "MARGIN": "Overlap margin in pixels around each tile's core. Empty: automatic (128).",
    "BATCH_SIZE": "Tiles per batch. 0: automatic (1).",
    "OUTPUT_RESOLUTION": "Model: the map at the model's 0.2 m; input: on the input's own grid.",
    "EXPORT_PIXEL_LIMIT": "Largest temporary export of a non-file layer, in pixels.",
    "SENTINEL2_SOURCE": "U-T&T models only: where the Sentinel-2 time series comes from; "
    "ignored (with a warning) for U-Net models.",
    "SENTINEL2_LOCATION": "U-T&T: STAC API URL (optionally #collection), catalogue file or "
    "FLAIR folder.",
    "YEAR": "U-T&T: year of the Sentinel-2 series. Empty: automatic (the orthophoto's "
    "acquisition year).",
    "ACQUISITION_DATE": "U-T&T: date the orthophoto was taken, YYYY-MM-DD. Empty: automatic "
    "(the raster's ACQUISITION_DATE or TIFFTAG_DATETIME tag).",
    "STRICT_SENTINEL2": "U-T&T: stop with an error at a tile without a usable Sentinel-2 date "
    "(all cloudy or snowy, or not covered) instead of mapping it from the "
    "aerial image alone.",
    # the outputs: from the engine's output table
    **{o.field: o.plugin_help for o in OUTPUTS.plugin_outputs()},
}
# the engine writes these as files itself: no memory layer, no database table
NON_FILE_REFUSED = tuple(o.field for o in OUTPUTS.plugin_outputs() if o.kind != OUTPUTS.FILE)


def output_parameter(entry: Any) -> QgsProcessingParameterDefinition:
    """The dialog's parameter of an entry of the engine's output table: the map is required,
    the others optional and not created unless asked for."""
    required = entry.key == "output"
    optional = {"optional": not required, "createByDefault": required}
    if entry.kind == OUTPUTS.RASTER:
        return QgsProcessingParameterRasterDestination(entry.field, label(entry.field), **optional)
    if entry.kind == OUTPUTS.VECTOR:
        return QgsProcessingParameterVectorDestination(
            entry.field, label(entry.field), TYPE_POLYGON, **optional
        )
    return QgsProcessingParameterFileDestination(
        entry.field, label(entry.field), entry.file_filter, **optional
    )


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
    BACKEND = "BACKEND"
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
    BACKEND_VALUES = BACKENDS
    RESOLUTION_VALUES = OUTPUT_RESOLUTIONS
    SENTINEL2_VALUES = tuple(key for key, _ in SENTINEL2_SOURCES)

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        number = QgsProcessingParameterNumber
        integer = NUMBER_INTEGER
        params: list[tuple[QgsProcessingParameterDefinition, bool]] = [
            (QgsProcessingParameterRasterLayer(self.INPUT, label(self.INPUT)), False),
            *[
                (QgsProcessingParameterBand(name, label(name), None, self.INPUT, True), False)
                for name in (
                    self.BAND_RED,
                    self.BAND_GREEN,
                    self.BAND_BLUE,
                    self.BAND_NIR,
                    self.BAND_ELEVATION,
                )
            ],
            (
                QgsProcessingParameterRasterLayer(
                    self.ELEVATION, label(self.ELEVATION), optional=True
                ),
                False,
            ),
            (
                QgsProcessingParameterBand(
                    self.ELEVATION_BAND, label(self.ELEVATION_BAND), None, self.ELEVATION, True
                ),
                False,
            ),
            (
                QgsProcessingParameterEnum(
                    self.MODEL, label(self.MODEL), model_options(), defaultValue=DEFAULT_MODEL_INDEX
                ),
                False,
            ),
            (
                QgsProcessingParameterFile(
                    self.MODEL_FILE,
                    label(self.MODEL_FILE),
                    optional=True,
                    fileFilter="Checkpoints (*.pth *.ckpt *.pt *.safetensors)",
                ),
                False,
            ),
            (
                QgsProcessingParameterFile(
                    self.MODEL_CARD,
                    label(self.MODEL_CARD),
                    optional=True,
                    fileFilter="Model card (*.json)",
                ),
                True,
            ),
            (QgsProcessingParameterExtent(self.EXTENT, label(self.EXTENT), optional=True), False),
            (
                QgsProcessingParameterFeatureSource(
                    self.MASK, label(self.MASK), [TYPE_POLYGON], optional=True
                ),
                False,
            ),
            (
                QgsProcessingParameterEnum(
                    self.DEVICE,
                    label(self.DEVICE),
                    ["Automatic (CUDA when available, else CPU)", "CPU", "CUDA"],
                    defaultValue=DEVICE_CHOICES.index(default_device()),
                ),
                False,
            ),
            (
                QgsProcessingParameterEnum(
                    self.BACKEND, label(self.BACKEND), list(BACKEND_CHOICES), defaultValue=0
                ),
                True,
            ),
            (number(self.TILE_SIZE, label(self.TILE_SIZE), integer, 0, False, 0, 8192), True),
            (number(self.MARGIN, label(self.MARGIN), integer, None, True, 0, 4096), True),
            (number(self.BATCH_SIZE, label(self.BATCH_SIZE), integer, 0, False, 0, 1024), True),
            (
                QgsProcessingParameterEnum(
                    self.OUTPUT_RESOLUTION,
                    label(self.OUTPUT_RESOLUTION),
                    ["model (0.2 m)", "input"],
                    defaultValue=0,
                ),
                True,
            ),
            (
                number(
                    self.EXPORT_PIXEL_LIMIT,
                    label(self.EXPORT_PIXEL_LIMIT),
                    integer,
                    export_pixel_limit(),
                    False,
                    0,
                ),
                True,
            ),
            (
                QgsProcessingParameterEnum(
                    self.SENTINEL2_SOURCE,
                    label(self.SENTINEL2_SOURCE),
                    [text for _, text in SENTINEL2_SOURCES],
                    defaultValue=0,
                ),
                True,
            ),
            (
                QgsProcessingParameterString(
                    self.SENTINEL2_LOCATION, label(self.SENTINEL2_LOCATION), optional=True
                ),
                True,
            ),
            (number(self.YEAR, label(self.YEAR), integer, None, True, 2015, 2100), True),
            (
                QgsProcessingParameterString(
                    self.ACQUISITION_DATE, label(self.ACQUISITION_DATE), optional=True
                ),
                True,
            ),
            (
                QgsProcessingParameterBoolean(
                    self.STRICT_SENTINEL2, label(self.STRICT_SENTINEL2), defaultValue=False
                ),
                True,
            ),
            *[(output_parameter(o), False) for o in OUTPUTS.plugin_outputs()],
        ]
        for param, is_advanced in params:
            param.setHelp(HELP.get(param.name(), ""))
            if is_advanced:
                param.setFlags(param.flags() | FLAG_ADVANCED)
            if param.name() in NON_FILE_REFUSED:
                param.setSupportsNonFileBasedOutput(False)
            self.addParameter(param)


def landcover_help(plain: bool = False) -> str:
    """The algorithm's help: what it does, its parameters by their labels, the legend, the
    citation. `plain`: text for the command line (qgis_process prints the help as it is and
    lists the parameters itself, so they are not repeated there)."""
    intro = (
        "Land-cover map of an orthophoto with IGN's FLAIR models (19-class FLAIR "
        "nomenclature), computed by the FLAIR engine in its own Python environment. Install "
        "it once with 'Install or repair the FLAIR engine'."
    )
    if plain:
        return f"{intro}\n\nClasses (code, colour, name):\n{class_table_text()}\n\n{CITATION}"
    # escaped: the help's own placeholders (<input> - <model>) are text, not HTML tags
    text = partial(html.escape, quote=False)  # apostrophes stay apostrophes
    params = "".join(
        f"<li><b>{text(BY_NAME[k].label)}</b>: {text(v)}</li>" for k, v in HELP.items()
    )
    return f"<p>{intro}</p><ul>{params}</ul><p>Classes:</p>{class_table_html()}<p>{CITATION}</p>"
