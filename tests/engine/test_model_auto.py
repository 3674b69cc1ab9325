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
from engine.models.auto import choose_model, offered_channels, rank_key
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
        InvalidInput, match="no registered model can be fed from these bands .*--bands"
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
    assert "weights not downloaded yet" in chosen[0]
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
