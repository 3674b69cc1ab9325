"""`predict` and `region` share one record of model, bands, runtime and tiling (`RunOptions`),
declared by the same option groups and checked at parse time: a typo fails before any input is
opened, any folder made or any mosaic written, naming the option at fault."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from engine.cli import build_parser, main
from engine.errors import InvalidInput
from engine.predict_cli import settings_from_args as predict_settings
from engine.region_cli import settings_from_args as region_settings
from engine.settings import PredictSettings, RunOptions

SHARED = (
    "--model",
    "--card",
    "--channels",
    "--classes",
    "--inactive",
    "--normalization",
    "--download",
    "--bands",
    "--input-max",
    "--device",
    "--precision",
    "--tile-size",
    "--margin",
    "--batch-size",
)
# (options, the option at fault); every one a typo the record refuses
TYPOS = [
    (("--tile-size", "0"), "--tile-size"),
    (("--tile-size", "-32"), "--tile-size"),
    (("--tile-size", "500"), "--tile-size"),
    (("--margin", "-1"), "--margin"),
    (("--tile-size", "512", "--margin", "256"), "--margin"),
    (("--batch-size", "0"), "--batch-size"),
    (("--batch-size", "-2"), "--batch-size"),
    (("--input-max", "0"), "--input-max"),
    (("--input-max", "nan"), "--input-max"),
]


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _helps(name: str) -> dict[str, str | None]:
    return {
        option: action.help
        for action in _subparser(name)._actions
        for option in action.option_strings
    }


def test_predict_and_region_declare_the_same_options_with_one_help() -> None:
    predict, region = _helps("predict"), _helps("region")
    for option in SHARED:
        assert option in predict and option in region, option
        assert predict[option] == region[option], option
        assert predict[option], option


@pytest.mark.parametrize(("options", "option"), TYPOS)
def test_a_typo_fails_at_parse_time_for_both_commands(
    tmp_path: Path, options: tuple[str, ...], option: str
) -> None:
    missing = tmp_path / "never-opened.tif"  # opened, it would fail as a missing input
    for argv, convert in (
        (["predict", str(missing), str(tmp_path / "out.tif"), *options], predict_settings),
        (["region", str(tmp_path / "region"), "--input", str(missing), *options], region_settings),
    ):
        with pytest.raises(InvalidInput) as caught:
            convert(build_parser().parse_args(argv))
        assert caught.value.fields["option"] == option, argv
        assert str(caught.value).startswith(option), caught.value


@pytest.mark.parametrize(("options", "option"), TYPOS[:1] + TYPOS[3:4] + TYPOS[5:6])
def test_a_region_typo_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, options: tuple[str, ...], option: str
) -> None:
    """Before, `region --tile-size 0` opened every input and wrote the mosaics first."""
    rgb = tmp_path / "RVB"
    rgb.mkdir()
    (rgb / "tile.jp2").write_bytes(b"not a raster: opened, the audit would say so")
    out = tmp_path / "region"
    argv = ["region", str(out), "--rgb", str(rgb / "*.jp2"), *options, "--progress", "none"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: {option}" in err and "tile.jp2" not in err, err
    assert not out.exists()


def test_zero_is_never_read_as_the_default() -> None:
    """`or None` and `or 1` read 0 as "not given"; the record refuses it instead."""
    for field, value in (("tile_size_px", 0), ("batch_size", 0), ("threads", 0)):
        with pytest.raises(InvalidInput):
            RunOptions("m", **{field: value})
    assert RunOptions("m", margin_px=0).margin_px == 0  # no margin is a margin


def test_the_record_round_trips_through_predict_settings(tmp_path: Path) -> None:
    from engine.io.destination import OutputPaths

    run = RunOptions("m", tile_size_px=512, margin_px=64, batch_size=3, backend="torch")
    settings = PredictSettings.of(
        run, input=tmp_path / "in.tif", outputs=OutputPaths(tmp_path / "o.tif")
    )
    assert (settings.tile_size_px, settings.margin_px, settings.batch_size) == (512, 64, 3)
    assert settings.run_options == run


def test_region_and_predict_read_the_same_record(tmp_path: Path) -> None:
    options = ["--model", "flair-inc-rgbie-15cl", "--tile-size", "512", "--margin", "32"]
    options += ["--batch-size", "2", "--bands", "3,2,1", "--precision", "fp32"]
    predict = predict_settings(
        build_parser().parse_args(["predict", "in.tif", str(tmp_path / "o.tif"), *options])
    )
    region = region_settings(
        build_parser().parse_args(["region", str(tmp_path / "r"), "--input", "in.tif", *options])
    )
    assert region.run == predict.run_options
    block = region.block_settings("mosaic.vrt")
    assert block.run_options == region.run
    assert block.model == "flair-inc-rgbie-15cl" and block.bands == (3, 2, 1)


def test_the_default_model_is_decided_once(tmp_path: Path) -> None:
    from engine.models.registry import load_registry

    default = load_registry().default
    predict = predict_settings(build_parser().parse_args(["predict", "in.tif", "o.tif"]))
    region = region_settings(
        build_parser().parse_args(["region", str(tmp_path / "r"), "--input", "in.tif"])
    )
    assert predict.model == region.run.model == default
