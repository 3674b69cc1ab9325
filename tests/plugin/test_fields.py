"""The one table of dialog fields: it builds the command line and turns the engine's messages
into the dialog's words."""

from __future__ import annotations

from flair_qgis.engine_command import PredictRequest
from flair_qgis.fields import FIELDS, for_dialog

MISSING_BANDS = (
    "model flair-inc-rgbie-15cl needs channels R,G,B,NIR,E; the input lacks NIR (near infrared), "
    "E (elevation) (usable bands: R=band 1, G=band 2, B=band 3); give them with --bands or "
    "--elevation DSM.tif, or choose a model with fewer channels (flair-inc-rgb-15cl needs only "
    "R,G,B)"
)


def test_every_option_of_the_command_comes_from_the_table():
    request = PredictRequest(
        "in.tif",
        "out.tif",
        "auto",
        (1, 2, 3, 4),
        card_path="c.json",
        elevation="dsm.tif:1",
        extent=(0.0, 0.0, 1.0, 1.0),
        mask_path="m.gpkg",
        device="cpu",
        tile_size_px=512,
        margin_px=64,
        batch_size=2,
        confidence_path="c.tif",
        stats_path="s.csv",
        polygons_path="p.gpkg",
        sentinel2="stac",
        year=2021,
        acquisition_date="2021-06-20",
        strict=True,
    )
    table = {f.option for f in FIELDS}
    protocol = {"--progress", "--overwrite", "--download"}  # not fields: the plugin's own
    used = {a for a in request.arguments() if a.startswith("--")}
    assert used - protocol <= table
    assert (
        "--model" in used
        and request.arguments()[request.arguments().index("--model") + 1] == "auto"
    )


def test_missing_bands_name_the_band_fields_of_the_missing_channels():
    text = for_dialog("InvalidInput", MISSING_BANDS)
    assert (
        "give them with Band for near infrared (BAND_NIR) / Band for elevation (in the "
        "orthophoto) (BAND_ELEVATION) or Separate elevation raster (ELEVATION)," in text
    )
    assert "Band for red" not in text  # R is there: its field is not asked for
    assert "--" not in text and "DSM.tif" not in text


def test_weights_message_offers_the_dialogs_fix():
    message = (
        "the weights of flair-inc-rgb-15cl are not on this machine; download "
        "F.pth from https://huggingface.co/IGNF/x into a folder and set FLAIR_WEIGHTS_DIR "
        "to it (or add --download to fetch them now)"
    )
    text = for_dialog("WeightsNotAvailable", message)
    assert "--download" not in text  # the plugin always allows it
    assert text.endswith(
        "pick it in Model checkpoint (overrides Model) (MODEL_FILE), or put "
        "it in the weights folder of Processing > Options > Providers > FLAIR"
    )
    assert "Model checkpoint" not in for_dialog("InvalidInput", "band 7 does not exist")


def test_options_named_in_log_lines_and_counts_of_one():
    assert (
        for_dialog("log", "add --strict to stop")
        == "add Fail on tiles without a usable Sentinel-2 date (STRICT_SENTINEL2) to stop"
    )
    assert (
        for_dialog("log", "1 tiles of 1280 px, 11 tiles, 0.1 tiles")
        == "1 tile of 1280 px, 11 tiles, 0.1 tiles"
    )
    assert for_dialog("log", "--unknown-option stays") == "--unknown-option stays"
