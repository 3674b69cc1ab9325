"""The "Inference runtime" field of `flair:landcover` and `flair:landcover_region`: its choice
reaches the engine's command as `--backend`, and the engine's `done` event, which names the
runtime that ran, reaches the log."""

from __future__ import annotations

from pathlib import Path

import processing
from qgis.core import QgsApplication

from flair_qgis.algorithms.landcover_region import region_arguments
from flair_qgis.engine_command import BACKENDS, PredictRequest

from .conftest import needs_engine
from .helpers import RecordingFeedback


def _choices(algorithm: str) -> list[str]:
    found = QgsApplication.processingRegistry().algorithmById(algorithm)
    assert found is not None, algorithm
    return list(found.parameterDefinition("BACKEND").options())


def test_the_field_offers_the_engines_backends(qgis_app) -> None:
    for algorithm in ("flair:landcover", "flair:landcover_region"):
        choices = _choices(algorithm)
        assert [c.split(" ")[0] for c in choices] == ["Automatic", "PyTorch", "OpenVINO"]
    assert BACKENDS == ("auto", "torch", "openvino")  # the engine's --backend, in that order
    args = PredictRequest("in.tif", "out.tif", "m.pth", (), backend="torch").arguments()
    assert args[args.index("--backend") + 1] == "torch"
    args = region_arguments("/out", {"--rgb": ["/r/*.tif"]}, [], backend="openvino")
    assert args[args.index("--backend") + 1] == "openvino"


@needs_engine
def test_openvino_chosen_in_the_dialog_runs_openvino(
    qgis_app, raster5: Path, checkpoint5: Path, tmp_path: Path
) -> None:
    feedback = RecordingFeedback()
    params = {
        "INPUT": str(raster5),
        "MODEL_FILE": str(checkpoint5),
        "TILE_SIZE": 256,
        "MARGIN": 32,
        "DEVICE": 1,  # CPU
        "BACKEND": BACKENDS.index("openvino"),
        "OUTPUT": str(tmp_path / "landcover.tif"),
    }
    processing.run("flair:landcover", params, feedback=feedback)
    assert (tmp_path / "landcover.tif").is_file()
    command = " ".join(feedback.commands)
    assert "--backend openvino" in command, command
    said = [line for line in feedback.infos if line.startswith("Inference runtime:")]
    assert said and said[0].startswith("Inference runtime: openvino fp32 ("), said
    assert "openvino: OpenVINO asked for, converted network checked against torch" in said[0]
    assert " --" not in said[0]  # the dialog says the runtime without command-line words
    converted = any(t.startswith("Converting the model for OpenVINO") for t in feedback.texts)
    cached = any("loaded from the cache" in line for line in feedback.infos)
    assert converted or cached, feedback.texts  # a conversion shows, once, in the progress text
