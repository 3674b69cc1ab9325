"""`flair:evaluate` end to end: code rasters written with GDAL, scored by the real engine."""

from __future__ import annotations

import json
import math
from pathlib import Path

import processing
import pytest
from osgeo import gdal, osr
from qgis.core import QgsProcessingException

from .conftest import needs_engine

pytestmark = needs_engine


def _codes(path: Path, rows: list[list[int]]) -> str:
    height, width = len(rows), len(rows[0])
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((652000.0, 0.2, 0.0, 6862000.0, 0.0, -0.2))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(2154)
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(0)
    band.WriteRaster(0, 0, width, height, bytes(v for row in rows for v in row))
    ds = None
    return str(path)


def _maps(tmp_path: Path) -> tuple[str, str]:
    """Prediction: left half 1 (building), right half 7 (deciduous). Reference: the same, but
    the right half's top quarter is 10 (herbaceous)."""
    size = 64
    prediction = [[1 if c < size // 2 else 7 for c in range(size)] for _ in range(size)]
    reference = [
        [(10 if r < size // 4 else 7) if c >= size // 2 else 1 for c in range(size)]
        for r in range(size)
    ]
    return _codes(tmp_path / "pred.tif", prediction), _codes(tmp_path / "ref.tif", reference)


def test_evaluate_end_to_end(qgis_app, tmp_path):
    prediction, reference = _maps(tmp_path)
    report = tmp_path / "report"
    results = processing.run(
        "flair:evaluate", {"PREDICTION": prediction, "REFERENCE": reference, "REPORT": str(report)}
    )
    assert Path(results["REPORT"]) == report
    assert Path(results["METRICS"]).exists() and Path(results["METRICS"]).parent == report
    # scores in percent, as everywhere
    assert math.isclose(results["OVERALL_ACCURACY"], 100 * (1 - 1 / 8), abs_tol=1e-4)
    # IoU: building 1, deciduous 3/4, herbaceous 0 (present in the reference) -> mean 7/12
    assert math.isclose(results["MIOU"], 100 * 7 / 12, abs_tol=1e-4)
    metrics = json.loads(Path(results["METRICS"]).read_text())
    assert metrics
    assert (report / "per_class.csv").exists() and (report / "confusion_matrix.csv").exists()


def test_evaluate_says_what_it_does_and_scores_in_percent(qgis_app, tmp_path):
    """No model is loaded: the progress text never says so. Every mIoU the log shows is in
    percent (the engine's line and the plugin's), the same figure."""
    from flair_qgis.engine_locator import CHECKING_TEXT
    from flair_qgis.engine_progress import STARTING_TEXT

    from .helpers import RecordingFeedback

    prediction, reference = _maps(tmp_path)
    feedback = RecordingFeedback()
    processing.run(
        "flair:evaluate",
        {"PREDICTION": prediction, "REFERENCE": reference, "REPORT": str(tmp_path / "r")},
        feedback=feedback,
    )
    assert feedback.texts[:2] == [CHECKING_TEXT, STARTING_TEXT]
    assert not any("model" in text for text in feedback.texts)
    shown = [line for line in feedback.infos if "mIoU" in line]
    assert len(shown) >= 2, feedback.infos
    figures = {line.split("mIoU ", 1)[1].split(" %")[0] for line in shown}
    assert figures == {f"{100 * 7 / 12:.2f}"}, shown


def test_perfect_map(qgis_app, tmp_path):
    prediction, _ = _maps(tmp_path)
    results = processing.run(
        "flair:evaluate",
        {"PREDICTION": prediction, "REFERENCE": prediction, "REPORT": str(tmp_path / "perfect")},
    )
    assert results["MIOU"] == pytest.approx(100.0) and results["OVERALL_ACCURACY"] == 100.0


def test_missing_reference_is_the_engines_message(qgis_app, tmp_path):
    prediction, _ = _maps(tmp_path)
    with pytest.raises(QgsProcessingException):
        processing.run(
            "flair:evaluate",
            {
                "PREDICTION": prediction,
                "REFERENCE": str(tmp_path / "absent.tif"),
                "REPORT": str(tmp_path / "r"),
            },
        )


def test_html_report_and_confusion_table(qgis_app, tmp_path):
    """The HTML output (what the Results Viewer shows) holds the figures, the per-class table
    and the plots; the confusion matrix loads as a table layer."""
    from qgis.core import QgsProject

    prediction, reference = _maps(tmp_path)
    page = tmp_path / "evaluation.html"
    results = processing.runAndLoadResults(
        "flair:evaluate",
        {
            "PREDICTION": prediction,
            "REFERENCE": reference,
            "REPORT": str(tmp_path / "report"),
            "REPORT_HTML": str(page),
        },
    )
    assert results["REPORT_HTML"] == str(page)
    text = page.read_text(encoding="utf-8")
    assert "<th>mIoU</th><td>58.33 %</td>" in text  # 7/12
    assert "<th>Overall accuracy</th><td>87.50 %</td>" in text
    assert "<td>building</td>" in text and "<td>100.00 %</td>" in text  # building's IoU
    assert text.count('src="data:image/png;base64,') == 2  # IoU bars and confusion matrix
    tables = [
        lyr
        for lyr in QgsProject.instance().mapLayers().values()
        if lyr.name().startswith("Confusion matrix")
    ]
    assert tables and tables[0].isValid()
    names = [f.attributes()[0] for f in tables[0].getFeatures()]
    assert "building" in names and "herbaceous vegetation" in names
    QgsProject.instance().removeAllMapLayers()


def test_a_relative_report_folder_lands_beside_the_working_directory(
    qgis_app, tmp_path, monkeypatch
):
    """The engine runs in another working directory: the plugin hands it absolute paths."""
    prediction, reference = _maps(tmp_path)
    monkeypatch.chdir(tmp_path)
    results = processing.run(
        "flair:evaluate", {"PREDICTION": prediction, "REFERENCE": reference, "REPORT": "rel"}
    )
    assert Path(results["REPORT"]) == tmp_path / "rel"
    assert (tmp_path / "rel" / "metrics.json").exists()


def test_report_html_stays_in_the_report_folder_with_the_default_output(qgis_app, tmp_path):
    """With the dialog's default (a temporary HTML output), report.html is written in the report
    folder too, and the temporary page links to it; the log gives the scores in percent."""
    from .helpers import RecordingFeedback

    prediction, reference = _maps(tmp_path)
    report = tmp_path / "report"
    feedback = RecordingFeedback()
    results = processing.run(
        "flair:evaluate",
        {"PREDICTION": prediction, "REFERENCE": reference, "REPORT": str(report)},
        feedback=feedback,
    )
    kept = report / "report.html"
    assert kept.is_file() and "<th>mIoU</th><td>58.33 %</td>" in kept.read_text(encoding="utf-8")
    page = Path(results["REPORT_HTML"])
    assert page.is_file()
    if page.resolve() != kept.resolve():  # the temporary output: it links to the kept page
        assert kept.resolve().as_uri() in page.read_text(encoding="utf-8")
    assert any("mIoU 58.33 %, overall accuracy 87.50 %" in line for line in feedback.infos)
    assert not any("0.5833" in line for line in feedback.infos)
