"""The one table of dialog fields: it builds the command line, and the engine's error codes
and fields are said in its words (never by parsing the engine's messages)."""

from __future__ import annotations

from flair_qgis.engine_command import PredictRequest
from flair_qgis.engine_shared import engine_module
from flair_qgis.fields import FIELDS, MAX_LINES, error_words, log_words, words_of

protocol = engine_module("protocol")


def test_every_option_of_the_command_comes_from_the_table():
    request = PredictRequest(
        "in.tif",
        "out.tif",
        "auto",
        {"R": 3, "NIR": 4},
        card_path="c.json",
        elevation="dsm.tif:1",
        extent=(0.0, 0.0, 1.0, 1.0),
        mask_path="m.gpkg",
        device="cpu",
        tile_size_px=512,
        margin_px=64,
        batch_size=2,
        other_outputs={"CONFIDENCE": "c.tif", "STATS": "s.csv", "POLYGONS": "p.gpkg"},
        sentinel2="stac",
        year=2021,
        acquisition_date="2021-06-20",
        strict=True,
    )
    table = {f.option for f in FIELDS}
    own = {"--progress", "--overwrite", "--download"}  # not fields: the plugin's own
    args = request.arguments()
    used = {a for a in args if a.startswith("--")}
    assert used - own <= table
    assert args[args.index("--model") + 1] == "auto"
    # only the bands the user set, named: the engine's rule completes the others
    assert args[args.index("--bands") + 1] == "R=3,NIR=4"
    assert "--bands" not in PredictRequest("in.tif", "out.tif", "auto", {}).arguments()


def error(code: str, message: str = "engine words", **fields) -> dict:
    return protocol.validate(protocol.error(code, "X", message, fields))


def test_missing_channels_name_the_band_fields_of_the_missing_channels():
    text = error_words(
        error(
            "missing_channels",
            "... give them with --bands or --elevation DSM.tif ...",
            channels=["NIR", "E"],
            model="flair-inc-rgbie-15cl",
            needs=["R", "G", "B", "NIR", "E"],
            option="--bands",
        )
    )
    assert "lacks NIR (near infrared), E (elevation)" in text
    assert (
        "Set Band for near infrared (BAND_NIR) / Band for elevation (in the orthophoto) "
        "(BAND_ELEVATION) or Separate elevation raster (ELEVATION)" in text
    )
    assert "Band for red" not in text  # R is there: its field is not asked for
    assert "--" not in text and "DSM.tif" not in text


def test_weights_missing_is_said_from_its_fields():
    text = error_words(
        error(
            "weights_missing",
            "the weights are not here; set FLAIR_WEIGHTS_DIR (or add --download)",
            model="flair-inc-rgb-15cl",
            file="FLAIR-INC_rgb_15cl_resnet34-unet.safetensors",
            size_bytes=97_800_000,
            url="https://huggingface.co/IGNF/x/resolve/main/F.safetensors",
            folders=["/home/u/.local/share/flair/weights", "/opt/flair"],
        )
    )
    lines = text.splitlines()
    assert 1 <= len(lines) <= MAX_LINES
    first = lines[0]
    assert "flair-inc-rgb-15cl" in first and "not on this machine" in first
    assert "FLAIR-INC_rgb_15cl_resnet34-unet.safetensors (98 MB)" in first
    assert "Model checkpoint (overrides Model) (MODEL_FILE)" in first
    assert "/home/u/.local/share/flair/weights" in first
    assert "--" not in text and "FLAIR_WEIGHTS_DIR" not in text
    # without fields (an engine that does not give them yet): still the dialog's fix
    bare = error_words(error("weights_missing", "set FLAIR_WEIGHTS_DIR"))
    assert "FLAIR_WEIGHTS_DIR" not in bare and "MODEL_FILE" in bare
    failed = error_words(error("download_failed", "run `flair-landcover models download x`"))
    assert "could not be downloaded" in failed and "flair-landcover" not in failed


def test_an_option_at_fault_is_named_by_its_field():
    text = error_words(
        error(
            "invalid_input",
            "--tile-size 500: give a positive multiple of 32",
            option="--tile-size",
            value=500,
            expected="a positive multiple of 32 such as 512",
        )
    )
    assert text == (
        "Tile size (px) (TILE_SIZE): 500 is not accepted; give a positive multiple of 32 "
        "such as 512."
    )
    band = error_words(
        error("invalid_input", "x", option="--bands", channel="B", value=9, expected="1 to 5")
    )
    assert band.startswith("Band for blue (BAND_BLUE): 9 is not accepted")
    # no `expected`: the one option the fields name is said with the field
    zones = words_of({"--layer": "Zones (ZONES)"})
    assert (
        error_words(error("invalid_input", "choose one with --layer", option="--layer"), zones)
        == "choose one with Zones (ZONES)"
    )
    # an option no field gives, or no option: the engine's message as it is
    assert error_words(error("output_failed", "disk full")) == "disk full"


def test_log_lines_name_the_field_they_are_about():
    event = protocol.log("Sentinel-2 year 2021: the acquisition's", "INFO", option="--year")
    assert log_words(event) == (
        "Sentinel-2 year 2021: the acquisition's [Year of the Sentinel-2 series (YEAR)]"
    )
    assert log_words(protocol.log("plain line")) == "plain line"
    assert log_words(protocol.log("x", option="--altitude")) == "x"  # no such field here


def test_a_checkpoint_without_a_card_is_said_with_the_card_field():
    """The engine's `model_error` for a checkpoint it cannot read alone carries what is
    unknown; the dialog names the card field, never `--channels` or `--classes`."""
    channels = error_words(
        error(
            "model_error",
            "/w/net.pth takes 4 channels; say which with --channels",
            option="--card",
            file="/w/net.pth",
            unknown="channels",
            count=4,
        )
    )
    assert channels == (
        "The checkpoint net.pth takes 4 bands but does not say which bands it takes: "
        "set Model card (JSON) (MODEL_CARD)."
    )
    classes = error_words(
        error("model_error", "x --classes", file="/w/n.pth", unknown="classes", count=7)
    )
    assert "has 7 classes" in classes and "--" not in classes
    mismatch = error_words(
        error("model_error", "x", model="m", mismatch="channels", checkpoint=4, card=5)
    )
    assert mismatch.startswith("Model m: the checkpoint has 4 channels but its card gives 5")


def test_command_line_words_never_reach_the_dialog():
    """An engine sentence written for the command line (an option or a variable the fields
    do not carry) is kept for the log's details; the dialog says what it can in its words."""
    text = error_words(
        error("invalid_input", "give --acquisition-time HHhMM", option="--acquisition-time")
    )
    assert text.startswith("The FLAIR engine cannot run with these settings (invalid input).")
    assert "--" not in text
    named = error_words(error("invalid_input", "bad --mask and --extent", option="--mask"))
    assert "Check Mask polygons (MASK)." in named and "--" not in named
    env = error_words(error("model_error", "set FLAIR_WEIGHTS_DIR"))
    assert "FLAIR_WEIGHTS_DIR" not in env
