"""`flair:change`: land-cover change between two FLAIR maps of the same place (engine `change`).

The engine writes, into one folder, the change raster (before x 100 + after, 0 where nothing
changed or a map has no data, styled by the `.qml` beside it), the transition matrix in
hectares, the land-take figures, an HTML report and, with zones, the change per zone. The
raster, the matrix (as a table) and the zones are loaded; the report opens in the Results
Viewer; the land-take figures go to the log.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputFile,
    QgsProcessingOutputHtml,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
    QgsRasterLayer,
)

from ..classes import CITATION
from ..compat import FLAG_ADVANCED, LAYER_HINT_RASTER, LAYER_HINT_VECTOR, TYPE_POLYGON
from ..engine_command import engine_command
from ..engine_locator import engine_environment, require_engine
from ..engine_progress import LOADING_PERCENT, STARTING_TEXT, ProgressMapper
from ..engine_runner import run_engine
from .base import FlairAlgorithm, engine_path
from .zones import map_file, zones_source

GRIDS: tuple[tuple[str, str], ...] = (
    ("after", "the later map's (AFTER)"),
    ("before", "the earlier map's (BEFORE)"),
)
# the engine's phases: blocks of the two maps, then the zones when given
CHANGE_RANGES = {"change": (LOADING_PERCENT, 85.0), "zones": (85.0, 100.0)}
CHANGE_ONLY_RANGES = {"change": (LOADING_PERCENT, 100.0)}
# land_take.csv's figures, in the order the log line gives them
LAND_TAKE_FIGURES: tuple[tuple[str, str], ...] = (
    ("land_take", "land take"),
    ("renaturation", "renaturation"),
    ("net", "net land take"),
    ("changed", "changed"),
    ("compared", "compared"),
)


# what the engine writes into the output folder (its done event names them; these are the
# fallbacks), and the names a folder of an earlier run may hold besides (QGIS's sidecars)
OUTPUT_NAMES: dict[str, str] = {
    "change": "change.tif",
    "style": "change.qml",
    "transitions": "transitions.csv",
    "land_take": "land_take.csv",
    "report": "report.html",
    "zones": "zones.gpkg",
}
EARLIER_RUN_NAMES = (*OUTPUT_NAMES.values(), "land_take.json", "zones_transitions.csv")


def check_output_folder(folder: Path) -> bool:
    """Whether the engine may replace `folder` (it replaces the folder with all it holds): a
    new or empty folder, or one holding only an earlier change run's files.

    Raises:
        QgsProcessingException: the folder holds other files; nothing is touched.
    """
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise QgsProcessingException(
            f"Output folder (OUTPUT_FOLDER) {folder} is a file; choose a folder."
        )
    others = sorted(p.name for p in folder.iterdir() if not p.name.startswith(EARLIER_RUN_NAMES))
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise QgsProcessingException(
            f"Output folder (OUTPUT_FOLDER) {folder} already holds other files ({shown}); the "
            "run replaces the whole folder, so choose a new or empty folder."
        )
    return True


def output_paths(outputs: dict[str, Any], folder: Path) -> dict[str, str]:
    """The files of the engine's done event by role; the land-take table is the CSV."""
    named = {key: str(value) for key, value in outputs.items() if value}
    table = named.get("land_take_table") or named.get("land_take", "")
    if table.endswith(".csv"):
        named["land_take"] = table
    else:
        named.pop("land_take", None)
    return {key: named.get(key) or str(folder / name) for key, name in OUTPUT_NAMES.items()}


def change_arguments(
    before: str,
    after: str,
    out_dir: str,
    zones: str = "",
    layer: str = "",
    field: str = "",
    grid: str = "after",
    groups: str = "",
    replace: bool = False,
) -> list[str]:
    """The argument list of `engine change`; `replace` lets it replace an existing folder."""
    args = ["change", before, after, out_dir]
    if zones:
        args += ["--zones", zones]
        if layer:
            args += ["--layer", layer]
        if field:
            args += ["--field", field]
    args += ["--grid", grid]
    if groups:
        args += ["--groups", groups]
    if replace:
        args.append("--overwrite")
    return args + ["--progress", "json"]


def land_take_ha(stats: dict[str, Any], table: Path) -> dict[str, float]:
    """The land-take figures in hectares (`{"land_take": 1.2, ...}`): from land_take.csv
    (`figure,area_m2,area_ha,definition`), else from the engine's done event."""
    figures: dict[str, float] = {}
    if table.is_file():
        with table.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                try:
                    figures[str(row.get("figure"))] = float(row.get("area_ha") or "nan")
                except ValueError:
                    continue
    if figures:
        return figures
    return {
        name: float(stats[f"{name}_ha"])
        for name, _ in LAND_TAKE_FIGURES
        if isinstance(stats.get(f"{name}_ha"), (int, float))
    }


def land_take_line(figures: dict[str, float]) -> str:
    """One log line: "Land take 1.2000 ha, renaturation 0.1000 ha, ..."."""
    text = ", ".join(
        f"{label} {figures[name]:.4f} ha" for name, label in LAND_TAKE_FIGURES if name in figures
    )
    return text[:1].upper() + text[1:]


class ChangeStylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies the engine's `.qml` to the change raster when Processing loads it."""

    _instances: list[ChangeStylePostProcessor] = []

    def __init__(self, qml: str) -> None:
        super().__init__()
        self.qml = qml

    def postProcessLayer(  # noqa: N802
        self, layer, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        if isinstance(layer, QgsRasterLayer) and Path(self.qml).is_file():
            layer.loadNamedStyle(self.qml)
            layer.triggerRepaint()

    @classmethod
    def create(cls, qml: str) -> ChangeStylePostProcessor:
        """A post-processor kept alive for the session (Processing holds only a raw pointer)."""
        instance = cls(qml)
        cls._instances.append(instance)
        return instance


class ChangeAlgorithm(FlairAlgorithm):
    """Transitions, land take and a change raster between two FLAIR maps."""

    BEFORE = "BEFORE"
    AFTER = "AFTER"
    ZONES = "ZONES"
    FIELD = "FIELD"
    GROUPS = "GROUPS"
    GRID = "GRID"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    CHANGE = "CHANGE"
    TRANSITIONS = "TRANSITIONS"
    LAND_TAKE = "LAND_TAKE"
    REPORT = "REPORT"
    ZONES_OUTPUT = "ZONES_OUTPUT"
    WORDS = {
        "--zones": "Zones (ZONES)",
        "--layer": "Zones (ZONES)",
        "--field": "Zone identifier field (FIELD)",
        "--groups": "Land-take class groups (GROUPS)",
        "--grid": "Grid of the comparison (GRID)",
    }

    def name(self) -> str:
        return "change"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Land-cover change")

    def shortHelpString(self) -> str:  # noqa: N802
        return (
            "<p>Compares two FLAIR land-cover maps of the same place at two dates and says "
            "what changed into what, where, and how much land was taken for building.</p><ul>"
            "<li><b>Earlier map</b> and <b>Later map</b>: maps in FLAIR codes (0 is no data), "
            "for example two runs of FLAIR land-cover segmentation.</li>"
            "<li><b>Zones</b>: optional polygons; the change is also measured per zone. "
            "<b>Zone identifier field</b> names each zone.</li>"
            "<li><b>Land-take class groups (JSON file)</b>, advanced: "
            '<tt>{"artificial": [1, 3, 18], "natural": [4, 5, 6, ...]}</tt> of FLAIR codes. '
            "By default buildings, impervious surfaces and greenhouses are artificial; bare "
            "soil, water, forests, vineyards, herbaceous, agricultural and plowed land, snow, "
            "clear cuts, mixed and ligneous are natural, agricultural or forest; pervious "
            "surfaces, swimming pools and other count in neither.</li>"
            "<li><b>Grid of the comparison</b>, advanced: the other map is read onto this "
            "map's grid (nearest).</li>"
            "<li><b>Output folder</b> receives the change raster (code = earlier class x 100 + "
            "later class, 0 where nothing changed), the transition matrix in hectares, the "
            "land-take figures, an HTML report and, with zones, the zones with their change.</li>"
            "</ul><p>The change raster opens styled, the transition matrix opens as a table "
            "(earlier classes in rows, later in columns), the report is listed in the Results "
            "Viewer, and land take, renaturation and net land take (ha) are written in the "
            "log.</p>"
            f"<p>{CITATION}</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.BEFORE, "Earlier map"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.AFTER, "Later map"))
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.ZONES, "Zones", [TYPE_POLYGON], optional=True)
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.FIELD,
                "Zone identifier field",
                parentLayerParameterName=self.ZONES,
                optional=True,
            )
        )
        groups = QgsProcessingParameterFile(
            self.GROUPS, "Land-take class groups (JSON file)", extension="json", optional=True
        )
        grid = QgsProcessingParameterEnum(
            self.GRID, "Grid of the comparison", [label for _, label in GRIDS], defaultValue=0
        )
        for advanced in (groups, grid):
            advanced.setFlags(advanced.flags() | FLAG_ADVANCED)
            self.addParameter(advanced)
        self.addParameter(
            QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, "Output folder")
        )
        self.addOutput(QgsProcessingOutputRasterLayer(self.CHANGE, "Land-cover change"))
        self.addOutput(QgsProcessingOutputFile(self.TRANSITIONS, "Transition matrix (ha, CSV)"))
        self.addOutput(QgsProcessingOutputFile(self.LAND_TAKE, "Land take (CSV)"))
        self.addOutput(QgsProcessingOutputHtml(self.REPORT, "Land-cover change report"))
        self.addOutput(QgsProcessingOutputVectorLayer(self.ZONES_OUTPUT, "Change by zone"))

    def processAlgorithm(  # noqa: N802
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        engine = require_engine(feedback)
        before = map_file(
            self.parameterAsRasterLayer(parameters, self.BEFORE, context), "Earlier map (BEFORE)"
        )
        after = map_file(
            self.parameterAsRasterLayer(parameters, self.AFTER, context), "Later map (AFTER)"
        )
        zones, zones_layer, zones_name = "", "", ""
        if parameters.get(self.ZONES) not in (None, ""):
            zones, zones_layer, zones_name = zones_source(
                self, parameters, self.ZONES, context, feedback
            )
        field = (self.parameterAsString(parameters, self.FIELD, context) or "").strip()
        groups = engine_path(self.parameterAsFile(parameters, self.GROUPS, context) or "")
        grid = GRIDS[self.parameterAsEnum(parameters, self.GRID, context)][0]
        out_dir = engine_path(self.parameterAsString(parameters, self.OUTPUT_FOLDER, context))
        replace = check_output_folder(Path(out_dir))
        Path(out_dir).parent.mkdir(parents=True, exist_ok=True)
        arguments = change_arguments(
            before, after, out_dir, zones, zones_layer, field, grid, groups, replace
        )
        done = run_engine(  # the engine publishes the folder whole or not at all: no cleanup
            engine_command(engine.python, arguments),
            feedback,
            mapper=ProgressMapper(CHANGE_RANGES if zones else CHANGE_ONLY_RANGES),
            env=engine_environment(engine.pythonpath),
            words=self.WORDS,
            loading_text=STARTING_TEXT,  # no model to load
        )
        paths = output_paths(done.get("outputs") or {}, Path(out_dir))
        line = land_take_line(land_take_ha(done.get("stats") or {}, Path(paths["land_take"])))
        if line:
            feedback.pushInfo(line)
        self._load(context, paths["change"], "Land-cover change", self.CHANGE, LAYER_HINT_RASTER)
        if context.willLoadLayerOnCompletion(paths["change"]):
            details = context.layerToLoadOnCompletionDetails(paths["change"])
            details.setPostProcessor(ChangeStylePostProcessor.create(paths["style"]))
        self._load(
            context,
            paths["transitions"],
            "Land-cover transitions (ha; earlier rows, later columns)",
            self.TRANSITIONS,
            LAYER_HINT_VECTOR,
        )
        results = {
            self.OUTPUT_FOLDER: out_dir,
            self.CHANGE: paths["change"],
            self.TRANSITIONS: paths["transitions"],
            self.LAND_TAKE: paths["land_take"],
            self.REPORT: paths["report"],
        }
        if zones:
            name = f"{zones_name} - land-cover change by zone"
            self._load(context, paths["zones"], name, self.ZONES_OUTPUT, LAYER_HINT_VECTOR)
            results[self.ZONES_OUTPUT] = paths["zones"]
        return results

    @staticmethod
    def _load(
        context: QgsProcessingContext, path: str, name: str, output: str, hint: object
    ) -> None:
        """Load `path` into the project when the run ends (when the run loads results)."""
        if not Path(path).is_file():
            return
        details = QgsProcessingContext.LayerDetails(name, context.project(), output, hint)
        details.forceName = True
        context.addLayerToLoadOnCompletion(path, details)
