"""`flair-landcover change`: transitions, land take, grids, groups, refusals, zones, blocks.

Every test runs the command line (`engine.cli.main`) on seeded GeoTIFFs with a real Lambert-93
transform, reading what it wrote and its JSON-lines events.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from engine.cli import main
from tests.engine.evaluation_fixtures import blob_codes

X0, Y0 = 652000.0, 6862008.0  # top-left corner of the maps, EPSG:2154
HA = 10_000.0

# A hand-made pair of 8 x 8 maps at 1 m: one situation per row.
BEFORE = np.array(
    [
        [10] * 8,  # herbaceous -> building: land take
        [10] * 8,  # herbaceous unchanged
        [1] * 8,  # building -> herbaceous: renaturation
        [1] * 8,  # building unchanged
        [2] * 8,  # pervious -> impervious: change in no group
        [2] * 8,
        [0, 0, 11, 11, 11, 11, 11, 11],  # no data before; after is no data in cols 2, 3
        [6] * 8,  # coniferous -> greenhouse: land take, after is no data in col 7
    ],
    dtype=np.uint8,
)
AFTER = np.array(
    [
        [1] * 8,
        [10] * 8,
        [10] * 8,
        [1] * 8,
        [3] * 8,
        [3] * 8,
        [1, 1, 0, 0, 11, 11, 11, 11],
        [18] * 7 + [0],
    ],
    dtype=np.uint8,
)
# (before, after): pixels, counted by hand from the rows above
HAND_COUNTS = {(10, 1): 8, (10, 10): 8, (1, 10): 8, (1, 1): 8, (2, 3): 16, (11, 11): 4, (6, 18): 7}
HAND_LAND_TAKE_M2 = 8 + 7
HAND_RENATURATION_M2 = 8
HAND_CHANGED_M2 = 8 + 8 + 16 + 7
HAND_COMPARED_M2 = 59


def write_map(
    path: Path,
    codes: np.ndarray,
    res_m: float = 1.0,
    origin_xy: tuple[float, float] = (X0, Y0),
    epsg: int = 2154,
    nodata: int | None = 0,
) -> Path:
    """A one-band uint8 FLAIR map GeoTIFF with a real CRS and transform."""
    profile = {
        "driver": "GTiff",
        "width": codes.shape[1],
        "height": codes.shape[0],
        "count": 1,
        "dtype": "uint8",
        "crs": f"EPSG:{epsg}",
        "transform": from_origin(origin_xy[0], origin_xy[1], res_m, res_m),
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(codes.astype(np.uint8), 1)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:
    """Exit code and JSON events of `flair-landcover change ARGV --progress json`."""
    code = main(["change", *map(str, argv), "--progress", "json"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return code, events


def read_matrix_ha(path: Path) -> np.ndarray:
    """transitions.csv as a (20, 20) array in ha indexed by code (row and column 0 empty)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    out = np.zeros((20, 20))
    out[1:, 1:] = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    return out


def hand_pair(tmp_path: Path) -> tuple[Path, Path]:
    return write_map(tmp_path / "before.tif", BEFORE), write_map(tmp_path / "after.tif", AFTER)


def error_of(events: list[dict]) -> str:
    (error,) = [e for e in events if e["event"] == "error"]
    return error["message"]


def test_hand_made_pair_matrix_land_take_and_change_raster(tmp_path, capsys):
    before, after = hand_pair(tmp_path)
    out = tmp_path / "out"
    code, events = run_cli(capsys, before, after, out)
    assert code == 0, events
    done = events[-1]
    assert done["event"] == "done"
    assert set(done["outputs"]) >= {"change", "transitions", "land_take", "report"}
    assert done["stats"]["land_take_ha"] == pytest.approx(HAND_LAND_TAKE_M2 / HA)
    assert done["stats"]["renaturation_ha"] == pytest.approx(HAND_RENATURATION_M2 / HA)
    assert done["stats"]["compared_km2"] == pytest.approx(HAND_COMPARED_M2 / 1e6)

    expected = np.zeros((20, 20))
    for (b, a), n in HAND_COUNTS.items():
        expected[b, a] = n / HA  # 1 m² pixels
    assert np.allclose(read_matrix_ha(out / "transitions.csv"), expected, atol=1e-9)
    header = (out / "transitions.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("before \\ after (ha),building,pervious surface,")

    doc = json.loads((out / "land_take.json").read_text(encoding="utf-8"))
    assert doc["land_take_m2"] == pytest.approx(HAND_LAND_TAKE_M2)
    assert doc["renaturation_m2"] == pytest.approx(HAND_RENATURATION_M2)
    assert doc["net_m2"] == pytest.approx(HAND_LAND_TAKE_M2 - HAND_RENATURATION_M2)
    assert doc["changed_m2"] == pytest.approx(HAND_CHANGED_M2)
    assert doc["compared_m2"] == pytest.approx(HAND_COMPARED_M2)
    assert doc["groups"]["artificial"]["codes"] == [1, 3, 18]
    assert doc["groups"]["neither"]["codes"] == [2, 13, 19]
    with (out / "land_take.csv").open(newline="", encoding="utf-8") as f:
        table = {row["figure"]: row for row in csv.DictReader(f)}
    assert float(table["land_take"]["area_m2"]) == pytest.approx(HAND_LAND_TAKE_M2)
    assert float(table["net"]["area_ha"]) == pytest.approx(7 / HA)

    with rasterio.open(out / "change.tif") as ds:
        change = ds.read(1)
        assert ds.dtypes[0] == "uint16" and ds.nodata == 0
        assert ds.profile["tiled"] and ds.compression.name == "deflate"
        assert "before * 100 + after" in ds.tags()["CHANGE_ENCODING"]
        assert "before * 100 + after" in ds.descriptions[0]
    valid = (BEFORE > 0) & (AFTER > 0)
    b, a = BEFORE.astype(int), AFTER.astype(int)
    assert np.array_equal(change, np.where(valid & (b != a), b * 100 + a, 0))
    assert change[0, 0] == 1001 and change[7, 0] == 618 and change[2, 3] == 110
    assert change[1, 0] == 0 and change[6, 0] == 0 and change[7, 7] == 0  # unchanged, no data

    qml = (out / "change.qml").read_text(encoding="utf-8")
    assert qml.count("<paletteEntry") == 4  # 1001, 110, 203, 618
    assert 'value="1001" color="#db0e9a"' in qml  # the after class's colour (building)
    assert 'label="herbaceous vegetation → building"' in qml
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in report and "km²" in report
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_after_grid_with_coarser_shifted_before_aligned_by_nearest(tmp_path, capsys):
    rng = np.random.default_rng(7)
    coarse = rng.choice(np.array([1, 3, 10, 11]), size=(4, 4)).astype(np.uint8)
    fine = rng.choice(np.array([1, 3, 10, 11]), size=(8, 8)).astype(np.uint8)
    # BEFORE at 2 m; AFTER at 1 m shifted by 0.25 m: no pixel centre falls on an edge
    before = write_map(tmp_path / "before.tif", coarse, res_m=2.0)
    after = write_map(tmp_path / "after.tif", fine, origin_xy=(X0 + 0.25, Y0 - 0.25))

    code, events = run_cli(capsys, before, after, tmp_path / "on_after")
    assert code == 0, events
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert any("after map's grid" in m and "nearest class" in m for m in logs)
    with rasterio.open(tmp_path / "on_after" / "change.tif") as ds:
        assert (ds.width, ds.height, ds.res) == (8, 8, (1.0, 1.0))
        change = ds.read(1)
    # an after pixel (row r, col c) has its centre in the before pixel (r // 2, c // 2)
    on_after = coarse[np.arange(8)[:, None] // 2, np.arange(8)[None, :] // 2].astype(int)
    r, c = 5, 2
    expected = on_after[r, c] * 100 + fine[r, c] if on_after[r, c] != fine[r, c] else 0
    assert change[r, c] == expected
    counts = np.zeros((20, 20))
    np.add.at(counts, (on_after, fine.astype(int)), 1)
    assert np.allclose(read_matrix_ha(tmp_path / "on_after" / "transitions.csv"), counts / HA)

    code, events = run_cli(capsys, before, after, tmp_path / "on_before", "--grid", "before")
    assert code == 0, events
    with rasterio.open(tmp_path / "on_before" / "change.tif") as ds:
        assert (ds.width, ds.height, ds.res) == (4, 4, (2.0, 2.0))
        change = ds.read(1)
    # a before pixel (i, j) has its centre in the after pixel (2 i, 2 j)
    on_before = fine[::2, ::2].astype(int)
    b = coarse.astype(int)
    assert np.array_equal(change, np.where(b != on_before, b * 100 + on_before, 0))
    counts = np.zeros((20, 20))
    np.add.at(counts, (b, on_before), 4)  # 2 m pixels: 4 m² each
    assert np.allclose(read_matrix_ha(tmp_path / "on_before" / "transitions.csv"), counts / HA)


def test_groups_file_changes_land_take_and_a_bad_one_is_refused(tmp_path, capsys):
    before, after = hand_pair(tmp_path)
    groups = tmp_path / "groups.json"
    natural = [2, *range(4, 13), 14, 15, 16, 17]  # pervious surfaces count as natural here
    groups.write_text(json.dumps({"artificial": [1, 3, 18], "natural": natural}))
    code, events = run_cli(capsys, before, after, tmp_path / "out", "--groups", groups)
    assert code == 0, events
    assert events[-1]["stats"]["land_take_ha"] == pytest.approx((HAND_LAND_TAKE_M2 + 16) / HA)
    doc = json.loads((tmp_path / "out" / "land_take.json").read_text(encoding="utf-8"))
    assert doc["groups"]["natural"]["codes"] == natural
    assert doc["groups"]["source"] == str(groups)

    bad_files = {
        "overlap.json": ('{"artificial": [1, 3], "natural": [3, 4]}', "in both groups"),
        "range.json": ('{"artificial": [1, 25], "natural": [4]}', "holds 25"),
        "keys.json": ('{"artificial": [1]}', '"artificial" and "natural"'),
        "syntax.json": ("{artificial: [1]", "not readable JSON"),
    }
    for name, (text, said) in bad_files.items():
        (tmp_path / name).write_text(text)
        out = tmp_path / f"out_{name}"
        code, events = run_cli(capsys, before, after, out, "--groups", tmp_path / name)
        assert code == 1
        message = error_of(events)
        assert said in message and name in message and "\n" not in message
        assert not out.exists()


def test_refusals_leave_no_folder(tmp_path, capsys):
    before, after = hand_pair(tmp_path)
    far = write_map(tmp_path / "far.tif", AFTER, origin_xy=(X0 + 50_000, Y0))
    code, events = run_cli(capsys, before, far, tmp_path / "apart")
    assert code == 1
    message = error_of(events)
    assert "do not overlap" in message and "before.tif" in message and "far.tif" in message
    assert not (tmp_path / "apart").exists()

    wrong = AFTER.copy()
    wrong[3, 3] = 42
    odd = write_map(tmp_path / "odd_codes.tif", wrong)
    code, events = run_cli(capsys, before, odd, tmp_path / "odd")
    assert code == 1
    message = error_of(events)
    assert "odd_codes.tif" in message and "42" in message
    assert not (tmp_path / "odd").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".odd")]

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    code, events = run_cli(capsys, before, after, existing)
    assert code == 1
    assert "--overwrite" in error_of(events)
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    code, events = run_cli(capsys, before, after, existing, "--overwrite")
    assert code == 0
    assert (existing / "change.tif").exists() and not (existing / "keep.txt").exists()


def test_per_zone_land_take_with_half_pixels_and_a_zone_outside(tmp_path, capsys):
    import geopandas as gpd
    from shapely.geometry import box

    before, after = hand_pair(tmp_path)
    zones = gpd.GeoDataFrame(
        {"name": ["west", "outside"], "population": [120, 0]},
        geometry=[
            box(X0, Y0 - 8, X0 + 4.5, Y0),  # columns 0 to 3, and half of column 4
            box(X0 + 1000, Y0 + 1000, X0 + 1010, Y0 + 1010),
        ],
        crs="EPSG:2154",
    ).to_crs("EPSG:4326")  # zones in another CRS than the maps
    zones_path = tmp_path / "zones.gpkg"
    zones.to_file(zones_path, layer="communes", driver="GPKG")
    out = tmp_path / "out"
    code, events = run_cli(capsys, before, after, out, "--zones", zones_path, "--field", "name")
    assert code == 0, events
    assert events[-1]["outputs"]["zones"] == str(out / "zones.gpkg")
    assert not (out / ".pairs.tif").exists()

    found = gpd.read_file(out / "zones.gpkg", layer="zones")
    assert found.crs.to_epsg() == 4326
    assert list(found["zone"]) == ["west", "outside"]
    assert list(found["population"]) == [120, 0]
    west, outside = found.iloc[0], found.iloc[1]
    # per row of the hand-made pair: 4 whole pixels and a half in the zone
    assert west["land_take_ha"] == pytest.approx((4.5 + 4.5) / HA)  # rows 0 and 7
    assert west["renaturation_ha"] == pytest.approx(4.5 / HA)  # row 2
    assert west["net_ha"] == pytest.approx(4.5 / HA)
    assert west["changed_ha"] == pytest.approx(5 * 4.5 / HA)  # rows 0, 2, 4, 5, 7
    assert west["compared_ha"] == pytest.approx((6 * 4.5 + 0.5 + 4.5) / HA)  # row 6: half of col 4
    for column in ("land_take_ha", "renaturation_ha", "net_ha", "changed_ha", "compared_ha"):
        assert outside[column] == 0

    with (out / "zones_transitions.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["zone", "before", "after", "area_m2"]
    assert {r["zone"] for r in rows} == {"west"}
    by_pair = {(int(r["before"]), int(r["after"])): float(r["area_m2"]) for r in rows}
    assert by_pair[(10, 1)] == pytest.approx(4.5)
    assert by_pair[(6, 18)] == pytest.approx(4.5)
    assert by_pair[(11, 11)] == pytest.approx(0.5)
    assert by_pair[(2, 3)] == pytest.approx(9.0)


def test_small_blocks_give_the_same_figures_as_one_block(tmp_path, capsys):
    before_codes = blob_codes(150, 200, seed=11, cell_px=9)
    after_codes = np.where(
        np.random.default_rng(12).random((150, 200)) < 0.3,
        blob_codes(150, 200, seed=13, cell_px=7),
        before_codes,
    )
    before_codes[:10, :20] = 0
    after_codes[-7:, -30:] = 0
    before = write_map(tmp_path / "before.tif", before_codes, res_m=0.2)
    after = write_map(tmp_path / "after.tif", after_codes, res_m=0.2)

    code, events = run_cli(capsys, before, after, tmp_path / "blocks", "--block-size", "64")
    assert code == 0, events
    starts = [e for e in events if e["event"] == "start" and e["phase"] == "change"]
    assert [(s["total"], s["unit"]) for s in starts] == [(3 * 4, "blocks")]  # 150/64 x 200/64
    code, events = run_cli(capsys, before, after, tmp_path / "whole")
    assert code == 0, events

    blocks = (tmp_path / "blocks" / "transitions.csv").read_text(encoding="utf-8")
    whole = (tmp_path / "whole" / "transitions.csv").read_text(encoding="utf-8")
    assert blocks == whole
    counts = np.zeros((20, 20))
    valid = (before_codes > 0) & (after_codes > 0)
    np.add.at(counts, (before_codes[valid].astype(int), after_codes[valid].astype(int)), 0.04)
    assert np.allclose(read_matrix_ha(tmp_path / "blocks" / "transitions.csv"), counts / HA)
    with (
        rasterio.open(tmp_path / "blocks" / "change.tif") as a,
        rasterio.open(tmp_path / "whole" / "change.tif") as b,
    ):
        assert np.array_equal(a.read(1), b.read(1))
