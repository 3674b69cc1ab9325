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
from ..engine_runner import ProgressMapper, run_engine
from ..evaluation_report import write_report_html
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
            "<li><b>PREDICTION</b>: the map to evaluate (GeoTIFF of FLAIR codes).</li>"
            "<li><b>REFERENCE</b>: the reference map (FLAIR codes).</li>"
            "<li><b>MASK</b>: optional polygons; only pixels inside count.</li>"
            "<li><b>REPORT</b>: folder receiving metrics.json, per_class.csv, "
            "confusion_matrix.csv and PNG plots.</li>"
            "<li><b>HTML report</b>: a page with the figures, the per-class table and the "
            "plots; QGIS shows it in the Results Viewer.</li>"
            "<li>Outputs: mIoU and overall accuracy (0 to 1), the metrics.json file, and the "
            "confusion matrix, loaded as a table.</li></ul>"
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
        self.addOutput(QgsProcessingOutputNumber(self.MIOU, "mIoU"))
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_ACCURACY, "Overall accuracy"))
        self.addOutput(QgsProcessingOutputFile(self.METRICS, "Metrics (JSON)"))

    def processAlgorithm(  # noqa: N802
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        engine = require_engine()
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
            command, feedback, mapper=ProgressMapper({}), env=engine_environment(engine.pythonpath)
        )
        stats = done.get("stats") or {}
        outputs = done.get("outputs") or {}
        metrics = str(outputs.get("metrics") or Path(report) / "metrics.json")
        if not stats and Path(metrics).exists():
            stats = json.loads(Path(metrics).read_text(encoding="utf-8"))
        miou, accuracy = _figure(stats, "miou"), _figure(stats, "overall_accuracy")
        feedback.pushInfo(f"mIoU {miou:.4f}, overall accuracy {accuracy:.4f}; report in {report}")
        page = self.parameterAsFileOutput(parameters, self.REPORT_HTML, context) or str(
            Path(report) / "report.html"
        )  # scripts that leave it out get it too
        write_report_html(Path(report), Path(page))
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
    value = stats.get(key)
    try:
        return float(value) if value is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")
