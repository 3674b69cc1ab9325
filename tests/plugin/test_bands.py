"""One band rule, the engine's: the plugin sends only the bands its user set (`--bands
NIR=4`), and the engine completes the others (band descriptions, colour interpretation, then
order), as the dialog's help says."""

from __future__ import annotations

import processing
import pytest
from osgeo import gdal, osr

from flair_qgis.algorithms.landcover_params import BAND_RULE, HELP

from .conftest import generate, needs_engine
from .helpers import RecordingFeedback


@pytest.fixture(scope="module")
def checkpoint4(tmp_path_factory) -> str:
    """A FLAIR-INC U-Net on R, G, B, NIR."""
    path = tmp_path_factory.mktemp("ckpt") / "unet4.pth"
    generate("checkpoint", str(path), "--channels", "4", "--logits", "19", "--layout", "flair-inc")
    return str(path)


def _irc_raster(path) -> str:
    """An IRC orthophoto as IGN writes it: bands NIR, R, G, described so, displayed as
    red, green, blue."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 64, 64, 4, gdal.GDT_Byte)
    ds.SetGeoTransform((652000, 0.2, 0, 6862000, 0, -0.2))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(2154)
    ds.SetProjection(srs.ExportToWkt())
    interps = (gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand, gdal.GCI_GrayIndex)
    for band, (ci, text) in enumerate(zip(interps, ("PIR", "R", "V", "B"), strict=True), 1):
        ds.GetRasterBand(band).SetColorInterpretation(ci)
        ds.GetRasterBand(band).SetDescription(text)
        ds.GetRasterBand(band).Fill(40 * band)
    ds = None
    return str(path)


def test_the_help_describes_the_engines_rule():
    for name in ("BAND_RED", "BAND_GREEN", "BAND_BLUE", "BAND_NIR", "BAND_ELEVATION"):
        assert BAND_RULE in HELP[name]
    assert "band descriptions" in BAND_RULE and "colour interpretation" in BAND_RULE


@needs_engine
def test_only_the_set_band_is_sent_and_the_engine_completes_the_rest(
    qgis_app, tmp_path, checkpoint4
):
    """The user sets blue only; the engine reads NIR, R, G from the band descriptions (the
    display colours say otherwise), and the done event's run record says what it used."""
    feedback = RecordingFeedback()
    processing.run(
        "flair:landcover",
        {
            "INPUT": _irc_raster(tmp_path / "irc.tif"),
            "MODEL_FILE": checkpoint4,
            "BAND_BLUE": 4,
            "DEVICE": 1,
            "TILE_SIZE": 64,
            "MARGIN": 8,
            "OUTPUT": str(tmp_path / "m.tif"),
        },
        feedback=feedback,
    )
    assert "--bands B=4 " in feedback.commands[-1]
    chosen = next(i for i in feedback.infos if i.startswith("model "))
    assert "R=band 2, G=band 3, B=band 4, NIR=band 1" in chosen
