"""MODEL "Automatic" (the default): the engine picks a model the layer's bands can feed, says
which and why, before any download; offline, the message offers the dialog's own fix."""

from __future__ import annotations

import json

import processing
import pytest
from qgis.core import QgsProcessingException

from .conftest import REPO, generate, needs_engine
from .helpers import RecordingFeedback

pytestmark = needs_engine


def test_automatic_picks_an_rgb_model_for_an_rgb_layer(qgis_app, tmp_path, monkeypatch):
    rgb = tmp_path / "rgb.tif"
    generate("raster", str(rgb), "--width", "128", "--height", "128", "--bands", "3")
    monkeypatch.setenv("FLAIR_WEIGHTS_DIR", str(tmp_path / "weights"))  # empty: no weights
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub is unreachable
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException) as err:
        processing.run(
            "flair:landcover",
            {"INPUT": str(rgb), "DEVICE": 1, "OUTPUT": str(tmp_path / "map.tif")},
            feedback=feedback,
        )
    assert "--model auto" in feedback.commands[-1] and "--bands" not in feedback.commands[-1]
    logs = feedback.infos
    choice_at = next(i for i, line in enumerate(logs) if line.startswith("model auto: "))
    chosen = logs[choice_at].split()[2]
    registry = {
        m["name"]: m
        for m in json.loads((REPO / "engine/models/cards/registry.json").read_text())["models"]
    }
    assert set(registry[chosen]["channels"]) <= {"R", "G", "B"}  # what an RGB layer can feed
    downloads = [i for i, line in enumerate(logs) if line.startswith("downloading ")]
    assert all(choice_at < i for i in downloads)  # chosen (and said why) before any download
    message = str(err.value)
    assert "lacks" not in message  # not the "NIR and elevation are missing" of a fixed default
    assert "Model checkpoint (overrides Model) (MODEL_FILE)" in message  # the in-dialog fix
    assert not (tmp_path / "map.tif").exists()


def test_missing_bands_are_named_by_the_dialogs_fields(qgis_app, tmp_path, checkpoint5):
    """A five-channel checkpoint on an RGB layer: the message names the dialog's band fields,
    not the command line's --bands / --elevation."""
    rgb = tmp_path / "rgb.tif"
    generate("raster", str(rgb), "--width", "64", "--height", "64", "--bands", "3")
    with pytest.raises(QgsProcessingException) as err:
        processing.run(
            "flair:landcover",
            {
                "INPUT": str(rgb),
                "MODEL_FILE": str(checkpoint5),
                "DEVICE": 1,
                "OUTPUT": str(tmp_path / "m.tif"),
            },
        )
    message = str(err.value)
    assert "Band for near infrared (BAND_NIR)" in message
    assert "Separate elevation raster (ELEVATION)" in message
    assert "--bands" not in message and "--elevation" not in message
