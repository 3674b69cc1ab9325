"""`predict` with U-T&T: a generated orthophoto plus a generated Sentinel-2 catalogue, through
the CLI, and the per-tile inputs (super-patch centring, aerial-only tiles, metadata) by hand.

The catalogue (tests/fixtures/sentinel2_catalog.py) holds zone-31 items of 2021 whose north
edge is `item_ymax`. The 600 x 600 px orthophoto (0.2 m, Lambert-93) is placed so that, with
512 px tiles and a 64 px margin (2 x 2 tiles, centres 76.8 m apart), the lower tiles' 400 m
super-patches lie inside the items (two clear months) and the upper tiles' cross their north
edge by about 38 m, so no date covers them: those run on the aerial branch alone.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from engine.cli import main
from engine.errors import InvalidInput
from engine.grid import Grid
from engine.models.card import ModelCard, Sentinel2Settings
from engine.models.utt import default_utt_card, encode_metadata
from engine.models.utt.inputs import (
    Acquisition,
    MetadataEncoder,
    Sentinel2Inputs,
    acquisition_from_tags,
    tile_centre,
)
from engine.models.utt.predict_inputs import resolve_acquisition
from engine.progress import Reporter
from engine.sentinel2.cube import SeriesCube
from engine.settings import Sentinel2Options
from engine.tiling import Tile, Tiling
from tests.fixtures.utt_checkpoint import make_utt_checkpoint
from tests.fixtures.utt_scene import make_scene

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_scene(tmp_path_factory.mktemp("utt_scene"))


@pytest.fixture(autouse=True)
def s2_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAIR_SENTINEL2_CACHE", str(tmp_path_factory.getbasetemp() / "s2cache"))


def _predict(scene: dict[str, Path], out: Path, *extra: str) -> int:
    args = ["predict", str(scene["ortho"]), str(out), "--threads", "2", "--margin", "64"]
    return main([*args, *extra])


def _utt_args(scene: dict[str, Path], year: str = "2021") -> list[str]:
    return [
        "--model",
        str(scene["ckpt"]),
        "--sentinel2",
        f"catalog:{scene['catalog']}",
        "--year",
        year,
    ]


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_utt_predict_end_to_end(scene, tmp_path, capsys) -> None:
    out = tmp_path / "map.tif"
    stats_path = tmp_path / "stats.json"
    code = _predict(
        scene,
        out,
        *_utt_args(scene),
        "--acquisition-date",
        "2021-06-20",
        "--acquisition-time",
        "10h30",
        "--altitude",
        "450",
        "--stats",
        str(stats_path),
        "--progress",
        "json",
    )
    events = _events(capsys.readouterr().out)
    assert code == 0, events[-1]
    phases = [e["phase"] for e in events if e["event"] == "start"]
    assert phases == ["sentinel2", "inference", "overviews"]
    with rasterio.open(out) as ds:
        codes = ds.read(1)
        colormap = ds.colormap(1)
    assert set(np.unique(codes)) <= set(range(1, 13))  # "other" (19) is inactive
    assert colormap[1][:3] == (0xDB, 0x0E, 0x9A)
    assert out.with_suffix(".qml").is_file()
    s2 = json.loads(stats_path.read_text())["sentinel2"]
    assert s2["year"] == 2021 and s2["source"].startswith("catalog:")
    assert s2["dates_in_series"] == 3 and s2["metadata"] is True
    assert s2["tiles"] == 4 and s2["tiles_without_sentinel2"] == 2
    assert s2["dates_per_tile"] == {"min": 2, "max": 2, "mean": 2.0}  # March, July
    done = events[-1]
    assert done["event"] == "done" and done["stats"]["sentinel2"] == s2
    warnings = [e["message"] for e in events if e.get("level") == "WARNING"]
    assert sum("no usable Sentinel-2 date" in w for w in warnings) == 2


def test_strict_fails_on_a_tile_without_usable_date(scene, tmp_path, capsys) -> None:
    out = tmp_path / "map.tif"
    code = _predict(scene, out, *_utt_args(scene), "--acquisition-date", "2021-06-20", "--strict")
    err = capsys.readouterr().err
    assert code == 1
    assert "no Sentinel-2 date of 2021 passes the cloud/snow filter" in err and "--strict" in err
    assert not out.exists()


def test_unet_with_sentinel2_warns_and_runs(scene, tmp_path, unet5, capsys) -> None:
    out = tmp_path / "map.tif"
    args = ["--model", str(unet5), "--sentinel2", f"catalog:{scene['catalog']}", "--year", "2021"]
    code = _predict(scene, out, *args, "--progress", "json")
    events = _events(capsys.readouterr().out)
    assert code == 0 and out.is_file()
    warnings = [e["message"] for e in events if e.get("level") == "WARNING"]
    assert any("is a U-Net: the Sentinel-2 options are ignored" in w for w in warnings)
    assert "sentinel2" not in events[-1]["stats"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "{ckpt}"], "is a U-T&T network and needs a Sentinel-2 source"),
        (["{utt}", "--acquisition-date", "2022-06-01"], "acquisition year 2022 is outside"),
        (["{utt}"], "give --acquisition-date YYYY-MM-DD"),
        (["{utt}", "--acquisition-date", "21/06/2021"], "is not YYYY-MM-DD"),
        (
            [
                "--model",
                "{ckpt}",
                "--sentinel2",
                "flair:{root}",
                "--acquisition-date",
                "2021-06-01",
            ],
            "serves the benchmark's patches by name",
        ),
    ],
)
def test_clear_errors(scene, tmp_path, capsys, extra, message) -> None:
    args: list[str] = []
    for a in extra:
        if a == "{utt}":
            args += _utt_args(scene)
        else:
            args.append(a.format(ckpt=scene["ckpt"], root=scene["root"]))
    code = _predict(scene, tmp_path / "map.tif", *args)
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "map.tif").exists()


# per-tile inputs, by hand -------------------------------------------------------------------
def _position_cube(cloudy_rows: int = 0) -> SeriesCube:
    """60 x 60 px at 10 m from (800, 2200) in Lambert-93; B2 = 1000 + row, B3 = 1000 + col.

    One date (2021-07-03); its cloud probability is 100 on the first `cloudy_rows` rows.
    """
    grid = Grid(CRS.from_epsg(2154), Affine(10.0, 0.0, 800.0, 0.0, -10.0, 2200.0), 60, 60)
    data = np.full((1, 10, 60, 60), 700, np.int16)
    data[0, 0] = 1000 + np.arange(60)[:, None]
    data[0, 1] = 1000 + np.arange(60)[None, :]
    masks = np.zeros((1, 2, 60, 60), np.uint8)
    masks[0, 1, :cloudy_rows] = 100
    return SeriesCube(grid, [dt.date(2021, 7, 3)], data, masks, 40, {})


WORK = Grid(CRS.from_epsg(2154), Affine(0.2, 0.0, 1000.0, 0.0, -0.2, 2000.0), 1000, 1000)


def _tile(row_off: int, col_off: int, index: int = 0) -> Tile:
    read = Window(col_off, row_off, 512, 512)
    return Tile(index, 0, 0, read, Window(col_off + 128, row_off + 128, 256, 256))


def test_superpatch_is_centred_on_the_tile_centre() -> None:
    tile = _tile(-128, 256)
    # read window: columns 256..768 -> x 1051.2..1153.6, centre 1102.4;
    # rows -128..384 -> y 2025.6..1923.2, centre 1974.4
    assert tile_centre(WORK, tile) == pytest.approx((1102.4, 1974.4))
    # nearest pixel corner: column (1102.4 - 800) / 10 = 30.24 -> 30, row (2200 - 1974.4) / 10 =
    # 22.56 -> 23; the 40 px square starts 20 before: rows 3..42, columns 10..49
    inputs = Sentinel2Inputs(_position_cube(), WORK, Sentinel2Settings(), None, False, Reporter())
    out = inputs([tile])
    s2 = out.s2
    assert s2.shape == (1, 1, 10, 40, 40) and out.metadata is None
    np.testing.assert_array_equal(s2[0, 0, 0, :, 0], 1000 + np.arange(3, 43))
    np.testing.assert_array_equal(s2[0, 0, 1, 0, :], 1000 + np.arange(10, 50))
    # one date in July -> one monthly mean dated 15 July: 2021-05-15 - 2021-07-15 = -61 days
    np.testing.assert_array_equal(out.dates, [[-61.0]])
    assert inputs.summary()["sentinel2"]["tiles_without_sentinel2"] == 0


def test_cloudy_tile_runs_aerial_only_and_strict_refuses() -> None:
    cube = _position_cube(cloudy_rows=25)  # rows 0..24 cloudy
    north, south = _tile(-128, 256, 0), _tile(600, 256, 1)
    # north super-patch rows 3..42: 22 of 40 rows cloudy (0.55 >= 0.5) -> dropped;
    # south centre y = 2000 - (600 + 256) * 0.2 = 1828.8 -> row 37: rows 17..56
    inputs = Sentinel2Inputs(cube, WORK, Sentinel2Settings(), None, False, Reporter())
    out = inputs([north, south])
    assert not out.s2[0].any() and not out.dates[0].any()  # padding only: aerial branch
    # south: rows 17..24 cloudy = 8 of 40 rows (0.2) -> kept
    np.testing.assert_array_equal(out.s2[1, 0, 0, :, 0], 1000 + np.arange(17, 57))
    figures = inputs.summary()["sentinel2"]
    assert figures["tiles"] == 2 and figures["tiles_without_sentinel2"] == 1
    strict = Sentinel2Inputs(cube, WORK, Sentinel2Settings(), None, True, Reporter())
    with pytest.raises(InvalidInput, match="tile 0 .* no Sentinel-2 date"):
        strict([north])


def test_metadata_uses_the_tile_centre_in_lambert93() -> None:
    acq = Acquisition(dt.date(2021, 6, 20), "10h30", "UCE-M3", 450.0)
    utm = Grid(CRS.from_epsg(32631), Affine(0.2, 0.0, 700000.0, 0.0, -0.2, 5000000.0), 600, 600)
    encoder = MetadataEncoder(utm.crs, acq, (2018, 2019, 2020, 2021))
    tile = Tiling(600, 600, 512, 64)
    first = next(iter(tile))
    x, y = tile_centre(utm, first)
    assert (x, y) == pytest.approx((700000.0 + 192 * 0.2, 5000000.0 - 192 * 0.2))
    from pyproj import Transformer

    x93, y93 = Transformer.from_crs(32631, 2154, always_xy=True).transform(x, y)
    expected = encode_metadata(x93, y93, 450.0, "UCE-M3", "2021-06-20", "10h30")
    np.testing.assert_array_equal(encoder(x, y), expected)


def test_acquisition_from_tags_and_options(tmp_path) -> None:
    assert acquisition_from_tags({"TIFFTAG_DATETIME": "2021:06:20 10:31:05"}) == (
        dt.date(2021, 6, 20),
        "10h31",
    )
    assert acquisition_from_tags({"ACQUISITION_DATE": "2019-08-02"}) == (dt.date(2019, 8, 2), None)
    assert acquisition_from_tags({"AREA_OR_POINT": "Area"}) == (None, None)
    said: list[str] = []
    acq = resolve_acquisition(
        Sentinel2Options(),
        "o.tif",
        {"TIFFTAG_DATETIME": "2021:06:20 10:31:05"},
        lambda m, *a, **k: said.append(m),
    )
    assert acq == Acquisition(dt.date(2021, 6, 20), "10h31", "UCE-M3", 0.0)
    assert any("read from o.tif's metadata tags" in s for s in said)


def test_default_card_matches_the_example_json() -> None:
    card = default_utt_card("flair2-utt")
    assert card.architecture == "utt" and card.normalization.divisor == 255.0
    assert card.logit_codes == (*range(1, 13), 19) and card.active_codes == tuple(range(1, 13))
    example = ModelCard.from_json(REPO / "docs" / "utt-card.example.json")
    assert example.sentinel2 == card.sentinel2 == Sentinel2Settings()
    for field in ("channels", "normalization", "logit_codes", "inactive_codes", "tile_size_px"):
        assert getattr(example, field) == getattr(card, field)


def test_model_without_metadata_needs_only_a_year(scene, tmp_path, capsys) -> None:
    ckpt = make_utt_checkpoint(tmp_path / "utt_nomtd.ckpt", metadata=False, seed=6)
    args = ["--model", str(ckpt), "--sentinel2", f"catalog:{scene['catalog']}"]
    assert _predict(scene, tmp_path / "map.tif", *args) == 1
    assert "give --year YYYY" in capsys.readouterr().err
