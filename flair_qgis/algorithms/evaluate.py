"""`flair:evaluate`: compare a land-cover map with a reference map (engine `evaluate`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
)

from ..classes import CITATION
from ..compat import LAYER_HINT_VECTOR, TYPE_POLYGON
from ..engine_command import engine_command, evaluate_arguments
from ..engine_locator import engine_environment, require_engine
from ..engine_progress import STARTING_TEXT, ProgressMapper
from ..engine_runner import run_engine
from ..evaluation_report import REPORT_PAGE, write_report_html
from ..export import layer_file_path
from .base import FlairAlgorithm, engine_path


class EvaluateAlgorithm(FlairAlgorithm):
    """Per-class IoU, mIoU and overall accuracy of a map against a reference, with a report."""

    PREDICTION = "PREDICTION"
    REFERENCE = "REFERENCE"
    MASK = "MASK"
    REPORT = "REPORT"
    REPORT_HTML = "REPORT_HTML"
    CONFUSION = "CONFUSION"
    MIOU = "MIOU"
    OVERALL_ACCURACY = "OVERALL_ACCURACY"
    METRICS = "METRICS"

    def name(self) -> str:
        return "evaluate"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Evaluate land-cover map")

    def shortHelpString(self) -> str:  # noqa: N802
        return (
            "<p>Compares a land-cover map in FLAIR codes (for example the output of FLAIR "
            "land-cover segmentation) with a reference map of the same codes, such as your own "
            "survey. The reference is aligned onto the map's grid (nearest); no-data pixels "
            "(code 0) are left out. Metrics come from one confusion matrix: per-class IoU, "
            "precision, recall, F1, mIoU and overall accuracy.</p><ul>"
            "<li><b>Land-cover map</b>: the map to evaluate (GeoTIFF of FLAIR codes).</li>"
            "<li><b>Reference map</b>: the reference map (FLAIR codes).</li>"
            "<li><b>Evaluation area</b>: optional polygons; only pixels inside count.</li>"
            "<li><b>Report folder</b>: receives report.html, metrics.json, per_class.csv, "
            "confusion_matrix.csv and PNG plots.</li>"
            "<li><b>HTML report</b>: the same page where you want it (by default a temporary "
            "file, linking to the report folder's report.html, which stays); QGIS shows it in "
            "the Results Viewer.</li>"
            "<li>Outputs: mIoU and overall accuracy in percent (0 to 100), the metrics.json "
            "file, and the confusion matrix, loaded as a table.</li></ul>"
            f"<p>{CITATION}</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.PREDICTION, "Land-cover map"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.REFERENCE, "Reference map"))
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.MASK, "Evaluation area", [TYPE_POLYGON], optional=True
            )
        )
        self.addParameter(QgsProcessingParameterFolderDestination(self.REPORT, "Report folder"))
        # an .html file destination becomes an HTML output: the Results Viewer lists it
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.REPORT_HTML,
                "HTML report",
                "HTML files (*.html)",
                optional=True,
                createByDefault=True,
            )
        )
        self.addOutput(QgsProcessingOutputFile(self.CONFUSION, "Confusion matrix (CSV)"))
        self.addOutput(QgsProcessingOutputNumber(self.MIOU, "mIoU (%)"))
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_ACCURACY, "Overall accuracy (%)"))
        self.addOutput(QgsProcessingOutputFile(self.METRICS, "Metrics (JSON)"))

    def processAlgorithm(  # noqa: N802
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        engine = require_engine(feedback)
        paths = []
        for name in (self.PREDICTION, self.REFERENCE):
            layer = self.parameterAsRasterLayer(parameters, name, context)
            path = layer_file_path(layer) if layer is not None else None
            if path is None:
                raise QgsProcessingException(
                    f"{name} must be a raster file the engine can read (GeoTIFF); save the "
                    "layer as a GeoTIFF first."
                )
            paths.append(str(path))
        mask = ""
        if parameters.get(self.MASK) not in (None, ""):
            mask = self.parameterAsCompatibleSourceLayerPath(
                parameters, self.MASK, context, ["gpkg", "shp"], "gpkg", feedback
            )
        report = engine_path(self.parameterAsString(parameters, self.REPORT, context))
        Path(report).mkdir(parents=True, exist_ok=True)
        command = engine_command(engine.python, evaluate_arguments(*paths, report, mask))
        done = run_engine(
            command,
            feedback,
            mapper=ProgressMapper({}),
            env=engine_environment(engine.pythonpath),
            loading_text=STARTING_TEXT,  # no model to load
        )
        stats = done.get("stats") or {}
        outputs = done.get("outputs") or {}
        metrics = str(outputs.get("metrics") or Path(report) / "metrics.json")
        if not stats and Path(metrics).exists():
            stats = json.loads(Path(metrics).read_text(encoding="utf-8"))
        miou, accuracy = _figure(stats, "miou"), _figure(stats, "overall_accuracy")
        saved = write_report_html(Path(report), Path(report) / REPORT_PAGE)  # always, kept
        feedback.pushInfo(
            f"mIoU {miou:.2f} %, overall accuracy {accuracy:.2f} %; report in {report} "
            f"({REPORT_PAGE})"
        )
        page = self.parameterAsFileOutput(parameters, self.REPORT_HTML, context) or str(saved)
        if Path(page).resolve() != saved.resolve():  # e.g. the default temporary file
            write_report_html(Path(report), Path(page), saved)
        confusion = str(outputs.get("confusion_matrix") or Path(report) / "confusion_matrix.csv")
        if Path(confusion).is_file():
            details = QgsProcessingContext.LayerDetails(
                "Confusion matrix (reference rows, predicted columns)",
                context.project(),
                self.CONFUSION,
                LAYER_HINT_VECTOR,
            )
            context.addLayerToLoadOnCompletion(confusion, details)
        return {
            self.REPORT: report,
            self.REPORT_HTML: page,
            self.METRICS: metrics,
            self.CONFUSION: confusion,
            self.MIOU: miou,
            self.OVERALL_ACCURACY: accuracy,
        }


def _figure(stats: dict[str, Any], key: str) -> float:
    """A score of the engine's (a fraction) in percent, as every figure is shown."""
    value = stats.get(key)
    try:
        return 100.0 * float(value) if value is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")
