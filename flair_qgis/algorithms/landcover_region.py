"""`flair:landcover_region`: map a whole region from BD ORTHO-style folders (engine `region`).

The engine does the work on a Dask cluster (local worker processes, or a running scheduler),
block by block, and keeps a manifest in the output folder: running the algorithm again with the
same parameters resumes. At the end the styled VRT mosaic of the blocks is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..classes import CITATION
from ..compat import FILE_FOLDER, FLAG_ADVANCED, LAYER_HINT_RASTER, TYPE_POLYGON, TYPE_RASTER
from ..engine_command import BACKEND_CHOICES, BACKENDS, engine_command, runtime_summary
from ..engine_locator import engine_environment, require_engine
from ..engine_runner import ProgressMapper, run_engine
from ..export import layer_file_path
from ..fields import form_label
from ..models import DEFAULT_MODEL_INDEX, model_choices, model_options
from ..styling import name_results
from .base import FlairAlgorithm, engine_path
from .landcover_params import BACKEND_HELP

PRODUCTS = (
    ("RGB", "RVB (R, G, B)", "--rgb"),
    ("IRC", "IRC (NIR, R, G)", "--irc"),
    ("ELEVATION", "Elevation", "--elevation"),
)
# the engine's phases: blocks fill the bar, merging the polygons ends it
REGION_RANGES = {"region": (3.0, 95.0), "polygons": (95.0, 100.0)}


def product_sources(folder: str, pattern: str, layers: list[str]) -> list[str]:
    """What the engine gets for one product: `folder/pattern` (a recursive glob), then layers'
    files."""
    sources = [engine_path(str(Path(folder) / (pattern or "**/*.jp2")))] if folder else []
    return sources + [engine_path(p) for p in layers if p]


def region_arguments(
    out_dir: str,
    products: dict[str, list[str]],
    model: list[str],
    mask: str = "",
    workers: int = 0,
    threads: int = 0,
    scheduler: str = "",
    confidence: bool = False,
    polygons: bool = False,
    backend: str = "auto",
) -> list[str]:
    """The argument list of `engine region`."""
    args = ["region", out_dir]
    for option, sources in products.items():
        if sources:
            args += [option, *sources]
    args += model
    if mask:
        args += ["--mask", mask]
    if scheduler:
        args += ["--scheduler", scheduler]
    elif workers:
        args += ["--workers", str(workers)]
    if threads:
        args += ["--threads-per-worker", str(threads)]
    if confidence:
        args.append("--confidence")
    if polygons:
        args.append("--polygons")
    return args + ["--backend", backend, "--progress", "json"]


class LandcoverRegionAlgorithm(FlairAlgorithm):
    """A region from many files, on a Dask cluster, resumable."""

    PATTERN = "PATTERN"
    MASK = "MASK"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    MODEL = "MODEL"
    MODEL_FILE = "MODEL_FILE"
    WORKERS = "WORKERS"
    THREADS = "THREADS"
    SCHEDULER = "SCHEDULER"
    CONFIDENCE = "CONFIDENCE"
    POLYGONS = "POLYGONS"
    BACKEND = "BACKEND"
    OUTPUT = "OUTPUT"

    def name(self) -> str:
        return "landcover_region"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("FLAIR land cover for a region")

    def shortHelpString(self) -> str:  # noqa: N802
        return (
            "<p>Maps a département or a region from IGN BD ORTHO deliveries: the RVB and IRC "
            "products (and elevation tiles) as folders with a file pattern, or as layers. The "
            "engine builds one virtual mosaic, cuts it into blocks and maps them on a Dask "
            "cluster: worker processes on this machine, or a running <tt>dask scheduler</tt>. "
            "The output folder receives one GeoTIFF per block, <tt>landcover.vrt</tt> (loaded, "
            "styled, at the end), statistics and a manifest: run the algorithm again with the "
            "same parameters to resume after a crash or a cancel.</p><ul>"
            "<li><b>Folder + pattern</b>: <tt>**/*.jp2</tt> finds the tiles in every "
            "subfolder.</li><li><b>IRC</b> gives the NIR channel (R, G, B, NIR models).</li>"
            "<li><b>Workers</b>: 0 sizes the local cluster from the cores and memory.</li>"
            "<li><b>Scheduler</b>: tcp://HOST:8786 of a cluster whose workers see the same "
            "folders.</li></ul>"
            f"<p>{CITATION}</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        for key, label, _ in PRODUCTS:
            self.addParameter(
                QgsProcessingParameterFile(
                    f"{key}_FOLDER", f"{label} folder", behavior=FILE_FOLDER, optional=True
                )
            )
            self.addParameter(
                QgsProcessingParameterMultipleLayers(
                    f"{key}_LAYERS", f"{label} layers", TYPE_RASTER, optional=True
                )
            )
        self.addParameter(
            QgsProcessingParameterString(
                self.PATTERN, "File pattern in the folders", defaultValue="**/*.jp2"
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.MASK, "Area (polygons)", [TYPE_POLYGON], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.MODEL, "Model", model_options(), defaultValue=DEFAULT_MODEL_INDEX
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL_FILE, "Checkpoint file instead of the list", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.WORKERS, "Local workers (0: from the cores)", defaultValue=0, minValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.THREADS, "Threads per worker (0: automatic)", defaultValue=0, minValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.SCHEDULER, "Dask scheduler address (instead of local workers)", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.CONFIDENCE, "Confidence mosaic too", defaultValue=False
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.POLYGONS, "Polygons too (one GeoPackage)", defaultValue=False
            )
        )
        backend = QgsProcessingParameterEnum(
            self.BACKEND, form_label(self.BACKEND), list(BACKEND_CHOICES), defaultValue=0
        )
        backend.setHelp(BACKEND_HELP)
        backend.setFlags(backend.flags() | FLAG_ADVANCED)
        self.addParameter(backend)
        self.addParameter(
            QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, "Output folder")
        )
        self.addOutput(QgsProcessingOutputRasterLayer(self.OUTPUT, "Land cover (VRT mosaic)"))

    def processAlgorithm(  # noqa: N802
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        engine = require_engine()
        pattern = self.parameterAsString(parameters, self.PATTERN, context)
        products = {
            option: product_sources(
                self.parameterAsFile(parameters, f"{key}_FOLDER", context) or "",
                pattern,
                [
                    str(layer_file_path(layer) or "")
                    for layer in self.parameterAsLayerList(parameters, f"{key}_LAYERS", context)
                ],
            )
            for key, _, option in PRODUCTS
        }
        if not products["--rgb"]:
            raise QgsProcessingException(
                "Give the RVB product: a folder (with the file pattern) or layers."
            )
        mask = ""
        if parameters.get(self.MASK) not in (None, ""):
            mask = self.parameterAsCompatibleSourceLayerPath(
                parameters, self.MASK, context, ["gpkg", "shp"], "gpkg", feedback
            )
        out_dir = engine_path(self.parameterAsString(parameters, self.OUTPUT_FOLDER, context))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        arguments = region_arguments(
            out_dir,
            products,
            self._model(parameters, context),
            mask,
            self.parameterAsInt(parameters, self.WORKERS, context),
            self.parameterAsInt(parameters, self.THREADS, context),
            self.parameterAsString(parameters, self.SCHEDULER, context).strip(),
            self.parameterAsBool(parameters, self.CONFIDENCE, context),
            self.parameterAsBool(parameters, self.POLYGONS, context),
            BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)],
        )
        done = run_engine(
            engine_command(engine.python, arguments),
            feedback,
            mapper=ProgressMapper(REGION_RANGES),
            env=engine_environment(engine.pythonpath),
        )
        outputs = done.get("outputs") or {}
        mosaic = str(outputs.get("output") or Path(out_dir) / "landcover.vrt")
        stats = done.get("stats") or {}
        if summary := runtime_summary(done):
            feedback.pushInfo(summary)
        feedback.pushInfo(
            f"Region: {stats.get('blocks', {})} blocks, "
            f"{stats.get('computed_this_run', 0)} computed in this run"
        )
        details = QgsProcessingContext.LayerDetails(
            "FLAIR land cover (region)",
            context.project(),
            self.OUTPUT,
            LAYER_HINT_RASTER,
        )
        context.addLayerToLoadOnCompletion(mosaic, details)
        name_results(
            context,
            mosaic,
            str(outputs.get("confidence") or ""),
            f"{Path(out_dir).name} - FLAIR land cover",
        )
        return {self.OUTPUT: mosaic, self.OUTPUT_FOLDER: out_dir}

    def _model(self, parameters: dict[str, Any], context: QgsProcessingContext) -> list[str]:
        """`--model` for the engine: the checkpoint file, a listed model, or nothing (the
        engine's default model)."""
        checkpoint = self.parameterAsFile(parameters, self.MODEL_FILE, context)
        if checkpoint:
            return ["--model", checkpoint]
        index = self.parameterAsEnum(parameters, self.MODEL, context)
        choices = model_choices()
        if 0 < index < len(choices):
            return ["--model", choices[index].name]
        return []
