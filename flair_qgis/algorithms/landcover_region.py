"""`flair:landcover_region`: map a whole region from BD ORTHO-style folders (engine `region`).

The engine does the work on a Dask cluster (local worker processes, or a running scheduler),
block by block, and keeps a manifest in the output folder: running the algorithm again with the
same parameters resumes. At the end the styled VRT mosaic of the blocks is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from ..engine_progress import ProgressMapper
from ..engine_runner import run_engine
from ..engine_shared import engine_module
from ..export import layer_file_path
from ..fields import form_label
from ..models import AUTO, DEFAULT_MODEL_INDEX, model_choices, model_options
from ..styling import name_results
from .base import FlairAlgorithm, engine_path
from .landcover import model_run
from .landcover_params import BACKEND_HELP

# the engine's tables (plain Python, read from its source): the input products, one folder and
# one layer list each, and the optional outputs, one checkbox each
PRODUCTS = engine_module("region.products")
OUTPUTS = engine_module("io.output_table")
# the engine's phases: blocks fill the bar, merging the polygons ends it
REGION_RANGES = {"region": (3.0, 95.0), "polygons": (95.0, 100.0)}


def product_sources(folder: str, pattern: str, layers: list[str]) -> list[str]:
    """What the engine gets for one product: `folder/pattern` (a recursive glob), then layers'
    files."""
    pattern = pattern or PRODUCTS.DEFAULT_PATTERN
    sources = [engine_path(str(Path(folder) / pattern))] if folder else []
    return sources + [engine_path(p) for p in layers if p]


def region_arguments(
    out_dir: str,
    products: dict[str, list[str]],
    model: list[str],
    mask: str = "",
    workers: int = 0,
    threads: int = 0,
    scheduler: str = "",
    outputs: Sequence[str] = (),
    backend: str = "auto",
) -> list[str]:
    """The argument list of `engine region`; `outputs`: the options of the optional outputs
    asked for (`--confidence`)."""
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
    args += outputs
    # as the segmentation dialog: missing weights are fetched (and the log says so first)
    return args + ["--backend", backend, "--download", "--progress", "json"]


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
            "<li><b>Folder + pattern</b>: <tt>**/*.{jp2,tif,tiff}</tt> finds JPEG 2000 and "
            "GeoTIFF tiles in every subfolder.</li><li><b>IRC</b> gives the NIR channel "
            "(R, G, B, NIR and near-infrared models).</li>"
            "<li><b>Model</b>: Automatic picks the best model the products (RVB, IRC, "
            "elevation) can feed whose weights are on this computer, and names in the log a "
            "better one you could download; with none here, the best one is downloaded.</li>"
            "<li><b>Workers</b>: 0 sizes the local cluster from the cores and memory.</li>"
            "<li><b>Scheduler</b>: tcp://HOST:8786 of a cluster whose workers see the same "
            "folders.</li></ul>"
            f"<p>{CITATION}</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        for product in PRODUCTS.PRODUCTS:
            key, label = product.key.upper(), product.label
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
                self.PATTERN, "File pattern in the folders", defaultValue=PRODUCTS.DEFAULT_PATTERN
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
                self.MODEL_FILE,
                "Model checkpoint (.pth/.ckpt/.safetensors) instead of the list",
                optional=True,
                fileFilter="Checkpoints (*.pth *.ckpt *.pt *.safetensors)",
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
        for entry in OUTPUTS.region_outputs():  # CONFIDENCE, POLYGONS: "also ..." checkboxes
            self.addParameter(
                QgsProcessingParameterBoolean(
                    entry.field,
                    entry.region_help[:1].upper() + entry.region_help[1:],
                    defaultValue=False,
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
        engine = require_engine(feedback)
        pattern = self.parameterAsString(parameters, self.PATTERN, context)
        products = {
            product.option: product_sources(
                self.parameterAsFile(parameters, f"{product.key.upper()}_FOLDER", context) or "",
                pattern,
                [
                    str(layer_file_path(layer) or "")
                    for layer in self.parameterAsLayerList(
                        parameters, f"{product.key.upper()}_LAYERS", context
                    )
                ],
            )
            for product in PRODUCTS.PRODUCTS
        }
        base = PRODUCTS.base_product()
        if not products[base.option]:
            raise QgsProcessingException(
                f"Give the {base.name} product: a folder (with the file pattern) or layers."
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
            [
                entry.option
                for entry in OUTPUTS.region_outputs()
                if self.parameterAsBool(parameters, entry.field, context)
            ],
            BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)],
        )
        done = run_engine(
            engine_command(engine.python, arguments),
            feedback,
            mapper=ProgressMapper(REGION_RANGES),
            env=engine_environment(engine.pythonpath),
        )
        outputs = done.get("outputs") or {}
        mosaic = str(outputs.get("output") or Path(out_dir) / OUTPUTS.output("output").region_file)
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
            # "<folder> - <model>": the model the engine ran (Automatic's choice), from `done`
            f"{Path(out_dir).name} - {model_run(done) or 'FLAIR land cover'}",
            str(outputs.get("polygons") or ""),
        )
        return {self.OUTPUT: mosaic, self.OUTPUT_FOLDER: out_dir}

    def _model(self, parameters: dict[str, Any], context: QgsProcessingContext) -> list[str]:
        """`--model` for the engine: the checkpoint file, a listed model, or `auto` for
        "Automatic" (the engine chooses from the products and the weights it finds)."""
        checkpoint = self.parameterAsFile(parameters, self.MODEL_FILE, context)
        if checkpoint:
            return ["--model", checkpoint]
        index = self.parameterAsEnum(parameters, self.MODEL, context)
        choices = model_choices()
        if 0 <= index < len(choices):
            return ["--model", choices[index].name]
        return ["--model", AUTO]
