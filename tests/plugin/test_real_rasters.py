"""Real rasters nobody here made (shared/realdata): RGB plus alpha, not 0.2 m, odd CRSs."""

from __future__ import annotations

from pathlib import Path

import processing
import pytest
from qgis.core import QgsProcessingException

from .conftest import REPO, needs_engine
from .helpers import RecordingFeedback, read_codes

REALDATA = REPO.parent / "shared" / "realdata"  # ../shared beside the checkout, as in CI
DRONE = REALDATA / "drone_rgba_2cm_utm33.tif"
pytestmark = [needs_engine, pytest.mark.skipif(not DRONE.exists(), reason="no shared realdata")]


def test_rgba_drone_image_with_an_rgb_model(qgis_app, checkpoint3, tmp_path):
    feedback = RecordingFeedback()
    results = processing.run(
        "flair:landcover",
        {
            "INPUT": str(DRONE),
            "MODEL_FILE": str(checkpoint3),
            "DEVICE": 1,
            "TILE_SIZE": 256,
            "MARGIN": 32,
            "OUTPUT": str(tmp_path / "drone.tif"),
        },
        feedback=feedback,
    )
    # no band set in the dialog: the engine's own band rule decides, and says what it chose
    assert "--bands" not in feedback.commands[-1]
    chosen = next(i for i in feedback.infos if i.startswith("model "))
    assert "R=band 1" in chosen and "G=band 2" in chosen and "B=band 3" in chosen
    assert "band 4" not in chosen  # the alpha band is a validity mask, not a channel
    out, rows = read_codes(Path(results["OUTPUT"]))
    assert out.renderer().type() == "paletted"
    assert abs(out.rasterUnitsPerPixelX() - 0.2) < 1e-6  # resampled from 2 cm to 0.2 m
    values = {v for row in rows for v in row}
    # this file's alpha is 255 everywhere: every pixel is valid and gets a FLAIR code
    assert values and values <= set(range(1, 20))


def test_five_band_model_on_rgb_image_is_refused(qgis_app, checkpoint5, tmp_path):
    with pytest.raises(QgsProcessingException) as err:
        processing.run(
            "flair:landcover",
            {
                "INPUT": str(DRONE),
                "MODEL_FILE": str(checkpoint5),
                "DEVICE": 1,
                "OUTPUT": str(tmp_path / "never.tif"),
            },
        )
    assert "lacks NIR (near infrared), E (elevation)" in str(err.value)
    assert not (tmp_path / "never.tif").exists()
