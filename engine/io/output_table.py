"""The outputs of a run: one entry each, so a new output is one entry here plus its writer.

Each entry names the key the `done` event reports it under, its command-line option, the files
it may be written as, its help, the QGIS dialog's field that asks for it and the styling the
plugin gives the loaded layer. `engine.outputs` registers each entry's writer (the map and its
companion rasters stream through `MapWriter`; the others are written from the finished map),
and every one of them is claimed and committed through `engine.io.destination.Destinations`.

Plain Python (standard library only): the QGIS plugin reads this table from the engine's source
(`flair_qgis.engine_shared.engine_module("io.output_table")`) to build its output parameters
and style their layers, the engine to declare its options and claim its files.
"""

from __future__ import annotations

from dataclasses import dataclass

# how the plugin styles a loaded output
STYLE_CLASSES = "classes"  # the FLAIR legend (paletted, 19 classes)
STYLE_PERCENT = "percent"  # a 0-100 % colour ramp
STYLE_NONE = ""  # loaded, or not, as QGIS does by default

# the kind of the plugin's parameter
RASTER = "raster"
VECTOR = "vector"
FILE = "file"


@dataclass(frozen=True)
class Output:
    """One output of `predict` (and of `region`, when `region_help` says how it asks)."""

    key: str  # its key in the `done` event's outputs, and its writer's
    option: str  # `predict`'s option ("" for the map: the positional OUTPUT)
    what: str  # how a refused destination names it ("the confidence raster must be ...")
    suffixes: tuple[str, ...]  # the file types it may be written as
    help: str  # the option's help
    kind: str  # RASTER, VECTOR or FILE: what the plugin's parameter asks for
    field: str = ""  # the plugin's parameter (`flair:landcover`), "" when it has none
    plugin_help: str = ""  # that parameter's help in the dialog
    file_filter: str = ""  # the parameter's file filter (FILE kind)
    style: str = STYLE_NONE
    region_help: str = ""  # `region`'s flag for it (`--confidence`), "" when region has none
    region_file: str = ""  # the region's file for it, in its output folder
    label: str = ""  # the plugin's parameter's label


OUTPUTS: tuple[Output, ...] = (
    Output(
        "output",
        "",
        "output raster",
        (".tif", ".tiff"),
        "land-cover GeoTIFF to write (FLAIR codes 1-19, 0 = no data)",
        RASTER,
        "OUTPUT",
        "Land-cover map: GeoTIFF of FLAIR codes 1 to 19, 0 = no data, with colour table "
        "and a .qml style beside it. Loaded as '<input> - <model>'.",
        style=STYLE_CLASSES,
        region_file="landcover.vrt",
        label="Land cover",
    ),
    Output(
        "confidence",
        "--confidence",
        "confidence raster",
        (".tif", ".tiff"),
        "GeoTIFF of the top class probability in percent (0-100)",
        RASTER,
        "CONFIDENCE",
        "Optional confidence raster: probability of the winning class in percent (values 0 "
        "to 100), loaded as '<input> - <model> - confidence' with a percentage colour ramp.",
        style=STYLE_PERCENT,
        region_help="also a confidence mosaic",
        label="Confidence (%)",
        region_file="confidence.vrt",
    ),
    Output(
        "probabilities",
        "--probabilities",
        "probabilities raster",
        (".tif", ".tiff"),
        "GeoTIFF with one band per class, probability in percent",
        RASTER,
    ),
    Output(
        "stats",
        "--stats",
        "--stats output",
        (".json", ".csv"),
        "class areas as .json or .csv",
        FILE,
        "STATS",
        "Optional class-area statistics (.json or .csv).",
        "JSON (*.json);;CSV (*.csv)",
        label="Class statistics",
    ),
    Output(
        "polygons",
        "--polygons",
        "--polygons output",
        (".gpkg", ".geojson", ".fgb"),
        "polygons of the map (.gpkg, .geojson, .fgb)",
        VECTOR,
        "POLYGONS",
        "Optional land-cover polygons (GeoPackage, fields code and name), loaded as "
        "'<input> - <model> - polygons' in the map's colours.",
        region_help="also polygons in one GeoPackage",
        label="Land-cover polygons",
        region_file="landcover.gpkg",
    ),
    Output(
        "zones",
        "--zones",
        "zones layer",
        (".gpkg",),
        "class areas per zone of a polygon layer (see --zones-out)",
        VECTOR,
    ),
)
BY_KEY: dict[str, Output] = {o.key: o for o in OUTPUTS}


def output(key: str) -> Output:
    """The entry of `key` (KeyError names the known ones)."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"no output {key!r}; known: {', '.join(BY_KEY)}") from None


def plugin_outputs() -> tuple[Output, ...]:
    """The outputs the landcover dialog asks for, in its order."""
    return tuple(o for o in OUTPUTS if o.field)


def region_outputs() -> tuple[Output, ...]:
    """The optional outputs `region` writes when its flag is given."""
    return tuple(o for o in OUTPUTS if o.region_help)
