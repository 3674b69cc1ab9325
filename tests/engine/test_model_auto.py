"""`--model auto`: the best registered model a raster's bands can feed, and the sentence why."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import rasterio
from rasterio.enums import ColorInterp as CI

from engine.cli import main
from engine.errors import InvalidInput
from engine.io.bands import RasterBand, parse_bands
from engine.models.auto import (
    choose_model,
    decide,
    offered_channels,
    rank_key,
)
from engine.models.download import how_to_get
from engine.models.registry import Registry, load_registry
from tests.fixtures.generate import make_orthophoto

U = CI.undefined
# (case, colour interpretation, band descriptions, --bands, elevation) -> chosen model
TABLE = [
    (
        "RGB orthophoto",
        (CI.red, CI.green, CI.blue),
        (),
        None,
        False,
        "flair-hub-rgb-swinbase-upernet",
    ),
    (
        "3 bands, no hints: read as R,G,B",
        (U, U, U),
        (),
        None,
        False,
        "flair-hub-rgb-swinbase-upernet",
    ),
    (
        "IRC by descriptions",
        (CI.red, CI.green, CI.blue),
        ("NIR", "R", "G"),
        None,
        False,
        "flair-hub-ir-convnextv2base-upernet",
    ),
    (
        "IRC by French descriptions",
        (U, U, U),
        ("PIR", "Rouge", "Vert"),
        None,
        False,
        "flair-hub-ir-convnextv2base-upernet",
    ),
    (
        "IRC by colour interpretation",
        (CI.nir, CI.red, CI.green),
        (),
        None,
        False,
        "flair-hub-ir-convnextv2base-upernet",
    ),
    (
        "IRC by --bands",
        (CI.red, CI.green, CI.blue),
        (),
        "NIR=1,R=2,G=3",
        False,
        "flair-hub-ir-convnextv2base-upernet",
    ),
    (
        "RGBI",
        (CI.red, CI.green, CI.blue, U),
        (),
        None,
        False,
        "flair-hub-ir-convnextv2base-upernet",
    ),
    ("RGBIE", (U,) * 5, (), None, False, "flair-hub-ir-convnextv2base-upernet"),
    (
        "RGB + --elevation: no NIR",
        (CI.red, CI.green, CI.blue),
        (),
        None,
        True,
        "flair-hub-rgb-swinbase-upernet",
    ),
    (
        "RGBA: alpha is not a band",
        (CI.red, CI.green, CI.blue, CI.alpha),
        (),
        None,
        False,
        "flair-hub-rgb-swinbase-upernet",
    ),
]


@pytest.mark.parametrize(
    ("case", "interp", "descriptions", "bands", "dsm", "expected"), TABLE, ids=[t[0] for t in TABLE]
)
def test_auto_rule_table(case, interp, descriptions, bands, dsm, expected) -> None:
    numbers = parse_bands(bands) if bands else None
    elevation = RasterBand("dsm.tif", 1) if dsm else None
    offered, basis = offered_channels(len(interp), interp, descriptions, numbers, elevation)
    choice = choose_model(offered, basis)
    assert choice.card.name == expected, case
    assert choice.reason.startswith(
        f"model auto: {expected} ({', '.join(choice.card.channels)} available"
    )


def test_reason_names_the_figure_and_the_basis() -> None:
    offered, basis = offered_channels(3, (U, U, U), ("NIR", "R", "G"), None, None)
    reason = choose_model(offered, basis).reason
    assert "best published mIoU 63.8" in reason and "band descriptions" in reason
    assert "NIR=band 1, R=band 2, G=band 3" in reason
    rgb, basis = offered_channels(3, (CI.red, CI.green, CI.blue), (), None, None)
    reason = choose_model(rgb, basis).reason
    assert "published mIoU" in reason and "preference" in reason
    assert "IRC orthophoto (NIR, R, G) is recognised only by its band descriptions" in reason


def test_reason_names_given_bands_and_elevation_in_plain_words() -> None:
    """The plugin's log shows the reason as it is: its user gave band fields and an elevation
    raster, so the reason names them so, not as command-line options."""
    offered, basis = offered_channels(
        4, (U,) * 4, (), parse_bands("1,2,3,4"), RasterBand("dsm.tif", 1)
    )
    reason = choose_model(offered, basis).reason
    assert "from the band numbers given and the elevation raster" in reason
    assert "--" not in reason
    assert "IRC orthophoto" not in reason  # NIR given: no hint about recognising IRC files


def test_manual_download_in_plain_words(monkeypatch) -> None:
    """With no weights folder set, the log's version of "how to get it" names the weights
    folder, not the variable the command line sets it with (that goes to the error's text and
    fields, and to the DEBUG level)."""
    monkeypatch.delenv("FLAIR_WEIGHTS_DIR", raising=False)
    card = load_registry().get("flair-inc-rgb-15cl")
    assert "(FLAIR_WEIGHTS_DIR)" in how_to_get(card)
    plain = how_to_get(card, plain=True)
    assert "FLAIR_WEIGHTS_DIR" not in plain and "--" not in plain
    assert card.source.filename in plain and "as the weights folder" in plain


def test_weights_in_the_hub_cache_only_the_variable_goes_to_debug(
    tmp_path: Path, monkeypatch
) -> None:
    """No weights folder set, flair-inc-rgb-15cl in the Hugging Face cache: chosen, and the
    better model is named in plain words; the variable that sets the weights folder on the
    command line is said at the DEBUG level only (the plugin's log detail)."""
    card = load_registry().get("flair-inc-rgb-15cl")
    cache = tmp_path / "hf-cache"
    repo = cache / ("models--" + card.source.repo_id.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / card.source.revision).write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / card.source.filename).write_bytes(b"weights")
    monkeypatch.delenv("FLAIR_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    said: list[tuple[str, str]] = []
    chosen = decide(
        {"R": 1, "G": 2, "B": 3},
        "band order",
        False,
        False,
        lambda message, level="INFO": said.append((level, message)),
    )
    assert chosen == card.name
    shown = [m for level, m in said if level == "INFO"]
    assert shown[0].startswith(f"model auto: {card.name} (")
    assert shown[1].startswith("a better model could be downloaded: ")
    assert "choose that folder as the weights folder" in shown[1]
    assert "choose it as the model, with downloading allowed, to fetch it" in shown[1]
    assert not any("FLAIR_WEIGHTS_DIR" in m or "--" in m for m in shown)
    detail = [m for level, m in said if level == "DEBUG"]
    assert len(detail) == 1 and "FLAIR_WEIGHTS_DIR" in detail[0]


def test_known_figures_rank_above_unknown_ones_then_preference() -> None:
    registry = load_registry()
    rgb = registry.get("flair-inc-rgb-15cl")
    cards = (
        replace(rgb, name="unknown-first", published_miou=None, preference=1),
        replace(rgb, name="low", published_miou=40.0),
        replace(rgb, name="high", published_miou=60.0),
    )
    ranked = sorted(enumerate(cards), key=lambda pair: rank_key(pair[1], pair[0]))
    assert [c.name for _, c in ranked] == ["high", "low", "unknown-first"]
    small = Registry(cards=cards, default="low")
    assert choose_model({"R": 1, "G": 2, "B": 3}, "band order", registry=small).card.name == "high"


def test_no_model_for_two_bands_says_what_to_give() -> None:
    offered, basis = offered_channels(2, (U, U), (), None, None)
    with pytest.raises(
        InvalidInput, match="no registered model can be fed from these bands .*red, green and"
    ):
        choose_model(offered, basis)


def test_named_bands_syntax() -> None:
    assert parse_bands("NIR=1,R=2,G=3") == (2, 3, 0, 1)
    assert parse_bands("r=3, g=2, b=1") == (3, 2, 1)
    for bad in ("NIR=1,NIR=2", "X=1", "R=0", "R=a"):
        with pytest.raises(InvalidInput, match="--bands"):
            parse_bands(bad)


def test_cli_auto_logs_its_choice_before_any_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch
) -> None:
    """An IRC raster whose bands say NIR, R, G: the choice is logged, then the missing weights
    stop the run before anything is written (nothing is downloaded without --download)."""
    monkeypatch.setenv("FLAIR_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    irc = make_orthophoto(tmp_path / "irc.tif", 64, 64, 3)
    with rasterio.open(irc, "r+") as ds:
        ds.descriptions = ("NIR", "R", "G")
    out = tmp_path / "map.tif"
    code = main(["predict", str(irc), str(out), "--model", "auto", "--progress", "json"])
    events = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    logs = [e["message"] for e in events if e["event"] == "log"]
    chosen = [m for m in logs if m.startswith("model auto: ")]
    assert chosen and chosen[0].startswith(
        "model auto: flair-hub-ir-convnextv2base-upernet (NIR, R, G available"
    )
    assert "weights not on this machine" in chosen[0]
    assert code != 0 and not out.exists()
    error = [e for e in events if e["event"] == "error"][-1]["message"]
    assert "FLAIR-HUB_LC-A_IR_convnextv2base-upernet.safetensors" in error


def test_ir_model_bands_from_rgbi_irc_and_named_bands() -> None:
    """An IR model (NIR, R, G) on a 4-band R, G, B, NIR raster reads bands 4, 1, 2; on an IRC
    raster described NIR, R, G bands 1, 2, 3; `--bands NIR=1,R=2,G=3` says the same by name."""
    from engine.io.bands import resolve_bands

    ir = ("NIR", "R", "G")
    rgbi = resolve_bands(ir, 4, (CI.red, CI.green, CI.blue, U), None, None, "m")
    assert rgbi.ortho_bands == (4, 1, 2)
    irc = resolve_bands(ir, 3, (CI.red, CI.green, CI.blue), None, None, "m", ("NIR", "R", "G"))
    assert irc.ortho_bands == (1, 2, 3)
    named = resolve_bands(
        ir, 3, (CI.red, CI.green, CI.blue), parse_bands("NIR=1,R=2,G=3"), None, "m"
    )
    assert named.ortho_bands == (1, 2, 3)
    with pytest.raises(InvalidInput, match="takes 4 from the orthophoto.*R,G,B,NIR"):
        resolve_bands(ir, 5, (U,) * 5, (1, 2, 3, 4, 5), None, "m")
    with pytest.raises(InvalidInput, match="lacks NIR"):
        resolve_bands(ir, 3, (CI.red, CI.green, CI.blue), None, None, "m")


def test_five_band_raster_ir_model_drops_blue_and_elevation(tmp_path: Path) -> None:
    """Without weights anywhere the IR ConvNeXt-V2 ranks first on R, G, B, NIR, E, and the
    reason says that it leaves blue and elevation unused."""
    offered, basis = offered_channels(5, (U,) * 5, (), None, None)
    reason = choose_model(offered, basis, cached=lambda card: False, allow_download=True).reason
    assert reason.startswith("model auto: flair-hub-ir-convnextv2base-upernet")
    assert "leaves B (band 3), E (band 5) unused" in reason
    assert "downloading it (367 MB)" in reason


def test_a_partial_band_map_is_completed_by_the_band_rule_for_auto() -> None:
    """`--bands NIR=4` keeps NIR on band 4 and completes R, G, B by the engine's one rule (the
    colour interpretation here), as the run will read them: Automatic sees R, G, B and NIR."""
    interp = (CI.red, CI.green, CI.blue, CI.gray)
    offered, basis = offered_channels(4, interp, (), parse_bands("NIR=4"), None)
    assert offered == {"NIR": 4, "R": 1, "G": 2, "B": 3}
    assert basis.endswith("and the band rule")
    whole, basis = offered_channels(4, interp, (), parse_bands("1,2,3,4"), None)
    assert whole == {"R": 1, "G": 2, "B": 3, "NIR": 4} and not basis.endswith("band rule")
