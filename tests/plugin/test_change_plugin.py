"""`flair:change` end to end: two code rasters written with QGIS's own GDAL, compared by the real
engine, through `processing.run`, `qgis_process` and a model after two segmentations."""

from __future__ import annotations

import re
from pathlib import Path

import processing
import pytest
from qgis.core import (
    QgsProcessingException,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

from .conftest import generate, needs_engine, qgis_process
from .figures_fixtures import (
    FAST,
    ZONES,
    box,
    halves_map,
    two_dates,
    write_zones,
)
from .helpers import RecordingFeedback


@needs_engine
def test_change_outputs_styles_and_land_take(qgis_app, tmp_path):
    before, after = two_dates(tmp_path)
    zones = write_zones(
        tmp_path / "zones.gpkg",
        {"west": box(0.0, 0.0, 32.0, 64.0), "east": box(32.0, 0.0, 64.0, 64.0)},
    )
    feedback = RecordingFeedback()
    try:
        results = processing.runAndLoadResults(
            "flair:change",
            {
                "BEFORE": before,
                "AFTER": after,
                "ZONES": zones,
                "FIELD": "name",
                "OUTPUT_FOLDER": str(tmp_path / "change"),
            },
            feedback=feedback,
        )
        folder = tmp_path / "change"
        assert Path(results["OUTPUT_FOLDER"]) == folder
        assert Path(results["CHANGE"]) == folder / "change.tif"
        raster = QgsRasterLayer(results["CHANGE"], "change")
        assert raster.isValid()
        loaded = QgsProject.instance().mapLayersByName("Land-cover change")
        assert loaded and loaded[0].isValid()
        assert loaded[0].renderer().type() == "paletted"
        assert Path(results["REPORT"]).is_file()
        assert Path(results["LAND_TAKE"]).is_file()
        transitions = [
            lyr
            for lyr in QgsProject.instance().mapLayers().values()
            if lyr.name().startswith("Land-cover transitions")
        ]
        assert transitions and transitions[0].isValid()
        assert Path(transitions[0].source().split("|")[0]) == Path(results["TRANSITIONS"])
        rows = {f.attributes()[0]: f for f in transitions[0].getFeatures()}
        assert "herbaceous vegetation" in rows
        zones_out = QgsVectorLayer(results["ZONES_OUTPUT"], "zones", "ogr")
        assert zones_out.isValid() and zones_out.featureCount() == 2
        assert QgsProject.instance().mapLayersByName("zones - land-cover change by zone")
        lines = [i for i in feedback.infos if i.startswith("Land take")]
        assert len(lines) == 1, feedback.infos
        figures = dict(re.findall(r"([a-z][a-z ]*?) (-?[\d.]+) ha", lines[0].lower()))
        assert float(figures["land take"]) == pytest.approx(0.1024, abs=1e-4)
        assert float(figures["renaturation"]) == pytest.approx(0.0, abs=1e-4)
    finally:
        QgsProject.instance().removeAllMapLayers()


@needs_engine
def test_engine_errors_reach_the_user(qgis_app, tmp_path):
    map_path = halves_map(tmp_path / "map.tif")
    zones = write_zones(tmp_path / "zones.gpkg", ZONES)
    with pytest.raises(QgsProcessingException, match="no field 'nope'.*name"):
        processing.run(
            "flair:zones",
            {"MAP": map_path, "ZONES": zones, "FIELD": "nope", "OUTPUT": str(tmp_path / "o.gpkg")},
        )
    groups = tmp_path / "groups.json"
    groups.write_text('{"artificial": [1], "natural": [1, 10]}', encoding="utf-8")
    before, after = two_dates(tmp_path)
    with pytest.raises(QgsProcessingException, match="in both groups"):
        processing.run(
            "flair:change",
            {
                "BEFORE": before,
                "AFTER": after,
                "GROUPS": str(groups),
                "OUTPUT_FOLDER": str(tmp_path / "c"),
            },
        )
    assert not (tmp_path / "c").exists()


@needs_engine
def test_cancel_leaves_no_change_folder(qgis_app, tmp_path):
    before, after = two_dates(tmp_path)
    feedback = RecordingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="cancelled"):
        processing.run(
            "flair:change",
            {"BEFORE": before, "AFTER": after, "OUTPUT_FOLDER": str(tmp_path / "c")},
            feedback=feedback,
        )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".c", "c"))]


def test_a_folder_holding_other_files_is_refused(qgis_app, tmp_path):
    """The engine replaces the whole output folder: only a new or empty folder, or an earlier
    run's, may be given."""
    from flair_qgis.algorithms.change import check_output_folder

    folder = tmp_path / "out"
    assert check_output_folder(folder) is False  # new: created by the engine
    folder.mkdir()
    assert check_output_folder(folder) is True  # empty: replaced
    for name in ("change.tif", "change.tif.aux.xml", "land_take.json", "zones.gpkg-wal"):
        (folder / name).write_text("x")
    assert check_output_folder(folder) is True  # an earlier run's
    (folder / "thesis.docx").write_text("x")
    with pytest.raises(QgsProcessingException, match="thesis.docx"):
        check_output_folder(folder)


def test_qgis_process_runs_change(installed_plugins, tmp_path):
    """Headless, as a script would: the change folder with its raster, table and report."""
    before, after = two_dates(tmp_path)
    folder = tmp_path / "headless_change"
    proc = qgis_process(
        installed_plugins,
        "run",
        "flair:change",
        "--",
        f"BEFORE={before}",
        f"AFTER={after}",
        f"OUTPUT_FOLDER={folder}",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("change.tif", "change.qml", "transitions.csv", "land_take.csv", "report.html"):
        assert (folder / name).is_file(), name
    assert "Land take 0.1024 ha" in proc.stdout


def change_model() -> QgsProcessingModelAlgorithm:
    """Two flair:landcover runs (two dates of one place) feeding flair:change, built as the
    model designer builds it."""
    model = QgsProcessingModelAlgorithm("FLAIR change of two orthophotos", "tests")
    for name, label in (("ortho_before", "Earlier orthophoto"), ("ortho_after", "Later one")):
        model.addModelParameter(
            QgsProcessingParameterRasterLayer(name, label), QgsProcessingModelParameter(name)
        )
    model.addModelParameter(
        QgsProcessingParameterFile("weights", "Checkpoint"), QgsProcessingModelParameter("weights")
    )
    for child_id, source in (("before", "ortho_before"), ("after", "ortho_after")):
        child = QgsProcessingModelChildAlgorithm("flair:landcover")
        child.setChildId(child_id)
        child.addParameterSources(
            "INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter(source)]
        )
        child.addParameterSources(
            "MODEL_FILE", [QgsProcessingModelChildParameterSource.fromModelParameter("weights")]
        )
        for key, value in FAST.items():
            child.addParameterSources(
                key, [QgsProcessingModelChildParameterSource.fromStaticValue(value)]
            )
        model.addChildAlgorithm(child)
    change = QgsProcessingModelChildAlgorithm("flair:change")
    change.setChildId("change")
    for key, child_id in (("BEFORE", "before"), ("AFTER", "after")):
        change.addParameterSources(
            key, [QgsProcessingModelChildParameterSource.fromChildOutput(child_id, "OUTPUT")]
        )
    output = QgsProcessingModelOutput("folder", "Change folder")
    output.setChildOutputName("OUTPUT_FOLDER")
    output.setChildId("change")
    change.setModelOutputs({"folder": output})
    model.addChildAlgorithm(change)
    model.addModelParameter(
        QgsProcessingParameterFolderDestination("change:folder", "Change folder"),
        QgsProcessingModelParameter("change:folder"),
    )
    return model


@needs_engine
def test_change_in_a_model_after_two_segmentations(
    qgis_app, raster5, checkpoint5, fixtures_dir, tmp_path
):
    later = fixtures_dir / "ortho5_later.tif"
    if not later.exists():  # the same place as raster5, another image
        generate("raster", str(later), "--width", "320", "--height", "256", "--seed", "1")
    saved = tmp_path / "change.model3"
    assert change_model().toFile(str(saved))
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(saved))
    # "change:folder" on QGIS 3.22, named after the description on newer QGIS: ask the model
    (destination,) = [p.name() for p in model.destinationParameterDefinitions()]
    folder = tmp_path / "change"
    results = processing.run(
        model,
        {
            "ortho_before": str(raster5),
            "ortho_after": str(later),
            "weights": str(checkpoint5),
            destination: str(folder),
        },
    )
    assert Path(results[destination]) == folder
    for name in ("change.tif", "change.qml", "transitions.csv", "land_take.csv", "report.html"):
        assert (folder / name).is_file(), name
