"""flair:landcover inside a Processing model (what the model designer saves) and batch-style."""

from __future__ import annotations

from pathlib import Path

import processing
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from .conftest import needs_engine
from .helpers import read_codes


def landcover_model() -> QgsProcessingModelAlgorithm:
    """A two-input model whose only step is flair:landcover, built as the designer builds it."""
    model = QgsProcessingModelAlgorithm("FLAIR in a model", "tests")
    model.addModelParameter(
        QgsProcessingParameterRasterLayer("ortho", "Orthophoto"),
        QgsProcessingModelParameter("ortho"),
    )
    model.addModelParameter(
        QgsProcessingParameterFile("weights", "Checkpoint"), QgsProcessingModelParameter("weights")
    )
    child = QgsProcessingModelChildAlgorithm("flair:landcover")
    child.setChildId("landcover")
    child.addParameterSources(
        "INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("ortho")]
    )
    child.addParameterSources(
        "MODEL_FILE", [QgsProcessingModelChildParameterSource.fromModelParameter("weights")]
    )
    child.addParameterSources("DEVICE", [QgsProcessingModelChildParameterSource.fromStaticValue(1)])
    output = QgsProcessingModelOutput("map", "Land cover")
    output.setChildOutputName("OUTPUT")
    output.setChildId("landcover")
    child.setModelOutputs({"map": output})
    model.addChildAlgorithm(child)
    model.addModelParameter(
        QgsProcessingParameterRasterDestination("landcover:map", "Land cover"),
        QgsProcessingModelParameter("landcover:map"),
    )
    return model


@needs_engine
def test_landcover_runs_inside_a_processing_model(qgis_app, raster5, checkpoint5, tmp_path):
    model = landcover_model()
    saved = tmp_path / "flair.model3"
    assert model.toFile(str(saved))
    reloaded = QgsProcessingModelAlgorithm()
    assert reloaded.fromFile(str(saved))
    # the model's destination: "landcover:map" on QGIS 3.22, named after the output's
    # description ("land_cover") on newer QGIS; ask the model rather than the version
    (destination,) = [p.name() for p in reloaded.destinationParameterDefinitions()]
    target = tmp_path / "from_model.tif"
    results = processing.run(
        reloaded, {"ortho": str(raster5), "weights": str(checkpoint5), destination: str(target)}
    )
    assert Path(results[destination]) == target and target.exists()
    layer, rows = read_codes(target)
    assert layer.renderer().type() == "paletted"
    assert all(0 < code <= 19 for row in rows for code in row)


@needs_engine
def test_batch_style_rows_run_one_after_another(
    qgis_app, raster5, raster4, checkpoint5, checkpoint3, tmp_path
):
    """The batch dialog runs one algorithm over several parameter rows, each with its context."""
    alg = QgsApplication.processingRegistry().createAlgorithmById("flair:landcover")
    rows = [
        {
            "INPUT": str(raster5),
            "MODEL_FILE": str(checkpoint5),
            "DEVICE": 1,
            "OUTPUT": str(tmp_path / "a.tif"),
        },
        {
            "INPUT": str(raster4),
            "MODEL_FILE": str(checkpoint3),
            "DEVICE": 1,
            "OUTPUT": str(tmp_path / "b.tif"),
        },
    ]
    for params in rows:
        context = QgsProcessingContext()
        feedback = QgsProcessingFeedback()
        results, ok = alg.run(params, context, feedback)
        assert ok and Path(results["OUTPUT"]).exists()
    # each row's map covers its own input (both 0.2 m rasters): 320 and 256 px wide
    assert [read_codes(tmp_path / n)[0].width() for n in ("a.tif", "b.tif")] == [320, 256]
