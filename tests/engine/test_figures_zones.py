"""`flair-landcover zones`: class areas per zone, checked against hand computations.

The map is 10 x 10 pixels of 1 m in Lambert-93; column c holds code c + 1, except the top
pixel of the last column, which is no data. Zones cut pixels in half, overlap, come in another
CRS, reach outside the map or lie wholly outside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from engine.cli import main
from engine.errors import Cancelled
from engine.figures.zones import class_slug
from engine.figures.zones_cli import ZonesSettings, run_zones
from engine.progress import Reporter

X0, Y0 = 650_000.0, 6_860_010.0  # top-left corner of the map, EPSG:2154
SLUGS = [class_slug(code) for code in range(1, 20)]


def write_map(path: Path, codes: np.ndarray, res_m: float = 1.0, nodata: int | None = 0) -> Path:
    bands = codes if codes.ndim == 3 else codes[None]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=bands.shape[2],
        height=bands.shape[1],
        count=bands.shape[0],
        dtype="uint8",
        crs="EPSG:2154",
        transform=from_origin(X0, Y0, res_m, res_m),
        nodata=nodata,
    ) as dst:
        dst.write(bands.astype(np.uint8))
    return path


def columns_map() -> np.ndarray:
    codes = np.tile(np.arange(1, 11, dtype=np.uint8), (10, 1))
    codes[0, 9] = 0
    return codes


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box in metres from the map's bottom-left corner."""
    bottom = Y0 - 10
    return shapely.box(X0 + x0, bottom + y0, X0 + x1, bottom + y1)


def write_zones(path: Path, names: list[str], geometries: list, crs: str | None = "EPSG:2154"):
    frame = gpd.GeoDataFrame(
        {"name": names, "population": np.arange(len(names)) * 100},
        geometry=geometries,
        crs=crs,
    )
    frame.to_file(path, layer="communes", driver="GPKG", engine="pyogrio")
    return path


def run(*argv: object) -> int:
    return main(["zones", *(str(a) for a in argv), "--progress", "none"])


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Path]:
    zones = [
        ("half", box(0.5, 0, 2.5, 10)),  # half of column 0, all of 1, half of 2
        ("overlap", box(1, 0, 3, 10)),  # columns 1 and 2, overlapping "half"
        ("partial", box(8, 5, 12, 15)),  # top half of columns 8 and 9 (one no data); 30 m² out
        ("far", box(1000, 1000, 1010, 1010)),  # wholly outside
        ("whole", box(0, 0, 10, 10)),
        ("nothing", None),  # a feature without geometry
    ]
    names, geometries = zip(*zones, strict=True)
    geographic = box(3, 0, 6, 10)  # columns 3 to 5, given in EPSG:4326
    return {
        "map": write_map(tmp_path / "map.tif", columns_map()),
        "zones": write_zones(tmp_path / "zones.gpkg", list(names), list(geometries)),
        "lonlat": write_zones(
            tmp_path / "lonlat.gpkg",
            ["geographic"],
            list(gpd.GeoSeries([geographic], crs=2154).to_crs(4326)),
            crs="EPSG:4326",
        ),
    }


def class_areas(row: pd.Series) -> dict[int, float]:
    return {code: row[f"{slug}_m2"] for code, slug in enumerate(SLUGS, 1) if row[f"{slug}_m2"]}


def test_areas_per_zone_match_the_hand_computation(case, tmp_path):
    out = tmp_path / "areas.gpkg"
    assert run(case["map"], "--zones", case["zones"], "--field", "name", "--out", out) == 0
    rows = pyogrio.read_dataframe(out, layer="zones").set_index("zone")
    expected = {  # zone: (zone_m2, mapped_m2, nodata_m2, outside_m2, {code: m2})
        "half": (20, 20, 0, 0, {1: 5, 2: 10, 3: 5}),
        "overlap": (20, 20, 0, 0, {2: 10, 3: 10}),
        "partial": (40, 9, 1, 30, {9: 5, 10: 4}),
        "far": (100, 0, 0, 100, {}),
        "whole": (100, 99, 1, 0, {c: (9 if c == 10 else 10) for c in range(1, 11)}),
        "nothing": (0, 0, 0, 0, {}),
    }
    for zone, (zone_m2, mapped, nodata, outside, codes) in expected.items():
        row = rows.loc[zone]
        got = (row.zone_m2, row.mapped_m2, row.nodata_m2, row.outside_m2)
        assert got == pytest.approx((zone_m2, mapped, nodata, outside), rel=1e-6, abs=1e-9), zone
        assert class_areas(row) == pytest.approx(codes, rel=1e-6), zone
        assert row.mapped_ha == pytest.approx(mapped / 1e4, rel=1e-6)
        assert row.nodata_ha == pytest.approx(nodata / 1e4, rel=1e-6)
    half = rows.loc["half"]
    assert (half.building_pct, half.pervious_surface_pct) == pytest.approx((25, 50), rel=1e-6)
    assert half.building_ha == pytest.approx(5e-4, rel=1e-6)
    assert rows.loc["far"].building_pct == 0 and rows.loc["far"].other_pct == 0
    fields = list(pyogrio.read_info(out, layer="zones")["fields"])
    assert fields[:3] == ["name", "population", "zone"]
    assert fields[3:9] == [
        "zone_m2",
        "mapped_m2",
        "mapped_ha",
        "nodata_m2",
        "nodata_ha",
        "outside_m2",
    ]
    assert fields[9:12] == ["building_m2", "building_ha", "building_pct"]
    assert fields[-3:] == ["other_m2", "other_ha", "other_pct"] and len(fields) == 3 + 6 + 57


def test_zones_in_another_crs_are_reprojected_and_written_back_as_given(case, tmp_path):
    out = tmp_path / "lonlat_areas.gpkg"
    assert run(case["map"], "--zones", case["lonlat"], "--out", out) == 0
    written = gpd.read_file(out, layer="zones")
    given = gpd.read_file(case["lonlat"])
    assert written.crs.to_epsg() == 4326
    assert written.geometry.iloc[0].equals_exact(given.geometry.iloc[0], 1e-12)
    row = written.iloc[0]
    assert (row["name"], row["population"], row["zone"]) == ("geographic", 0, 1)  # FID 1
    assert row.zone_m2 == pytest.approx(30, rel=1e-6)
    assert class_areas(row) == pytest.approx({4: 10, 5: 10, 6: 10}, rel=1e-6)
    assert row.outside_m2 == pytest.approx(0, abs=1e-6)


def test_csv_has_twenty_rows_per_zone(case, tmp_path):
    out, table = tmp_path / "areas.gpkg", tmp_path / "long.csv"
    argv = [case["map"], "--zones", case["zones"], "--out", out, "--csv", table]
    assert run(*argv, "--field", "name") == 0
    rows = pd.read_csv(table)
    assert list(rows.columns) == [
        "zone",
        "code",
        "class",
        "area_m2",
        "area_ha",
        "percent_of_mapped",
    ]
    assert len(rows) == 6 * 20
    assert list(rows.code[:20]) == list(range(20))
    assert rows["class"][0] == "no data" and rows["class"][2] == "pervious surface"
    partial = rows[rows.zone == "partial"].set_index("code")
    assert partial.area_m2[0] == pytest.approx(1) and np.isnan(partial.percent_of_mapped[0])
    assert partial.area_m2[9] == pytest.approx(5) and partial.area_ha[9] == pytest.approx(5e-4)
    assert partial.percent_of_mapped[9] == pytest.approx(100 * 5 / 9, rel=1e-6)
    assert partial.area_m2.sum() == pytest.approx(10)
    default = tmp_path / "default.gpkg"
    assert run(case["map"], "--zones", case["zones"], "--out", default) == 0
    assert len(pd.read_csv(default.with_suffix(".csv"))) == 6 * 20
    assert sorted(pd.read_csv(default.with_suffix(".csv")).zone.unique()) == list(range(1, 7))


def test_random_map_and_polygon_match_pixel_by_pixel_intersection(tmp_path):
    rng = np.random.default_rng(20)
    height, width, res = 30, 40, 0.5
    codes = rng.integers(0, 20, size=(height, width)).astype(np.uint8)
    path = write_map(tmp_path / "random.tif", codes, res_m=res)
    bottom = Y0 - height * res
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    radii = rng.uniform(3, 9, 9)
    star = shapely.Polygon(
        np.c_[X0 + 10 + radii * np.cos(angles), bottom + 7 + radii * np.sin(angles)]
    )
    zones = write_zones(tmp_path / "star.gpkg", ["star"], [star])
    out = tmp_path / "star_areas.gpkg"
    assert run(path, "--zones", zones, "--out", out) == 0
    row = gpd.read_file(out).iloc[0]
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    pixels = shapely.box(
        X0 + cols * res, Y0 - (rows + 1) * res, X0 + (cols + 1) * res, Y0 - rows * res
    )
    overlap = shapely.area(shapely.intersection(pixels, star))
    by_code = np.bincount(codes.ravel(), weights=overlap.ravel(), minlength=20)
    assert row.zone_m2 == pytest.approx(star.area, rel=1e-9)
    assert row.nodata_m2 == pytest.approx(by_code[0], rel=1e-6)
    assert row.outside_m2 == pytest.approx(star.area - overlap.sum(), rel=1e-6, abs=1e-6)
    assert [row[f"{s}_m2"] for s in SLUGS] == pytest.approx(list(by_code[1:]), rel=1e-6)
    assert row.mapped_m2 + row.nodata_m2 + row.outside_m2 == pytest.approx(row.zone_m2)


def leftovers(folder: Path, *inputs: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p not in inputs)


def test_refusals_leave_no_output(case, tmp_path, capsys):
    inputs = (case["map"], case["zones"], case["lonlat"])
    out = tmp_path / "areas.gpkg"
    points = tmp_path / "points.gpkg"
    gpd.GeoDataFrame(geometry=[shapely.Point(X0, Y0)], crs=2154).to_file(points)
    no_crs = tmp_path / "nocrs.gpkg"
    with pytest.warns(UserWarning, match="crs"):
        gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]).to_file(no_crs)
    bad_codes = columns_map()
    bad_codes[5, 1] = 25
    bad = write_map(tmp_path / "bad25.tif", bad_codes)
    three = write_map(tmp_path / "rgb.tif", np.stack([columns_map()] * 3))
    inputs += (points, no_crs, bad, three)
    cases = [
        ([case["map"], "--zones", points], ("points.gpkg", "Point")),
        ([case["map"], "--zones", no_crs], ("nocrs.gpkg", "no CRS")),
        ([bad, "--zones", case["zones"]], ("bad25.tif", "values 25")),
        ([three, "--zones", case["zones"]], ("rgb.tif", "3 bands")),
        ([case["map"], "--zones", case["zones"], "--field", "code"], ("'code'", "name")),
        ([case["map"], "--zones", case["zones"], "--layer", "parcels"], ("parcels", "communes")),
    ]
    for argv, words in cases:
        assert run(*argv, "--out", out) == 1, words
        message = capsys.readouterr().err.strip()
        assert message.startswith("flair-landcover: error: ") and "\n" not in message, message
        assert all(w in message for w in words), message
        assert leftovers(tmp_path, *inputs) == [], words
    out.write_bytes(b"an earlier result")
    assert run(case["map"], "--zones", case["zones"], "--out", out) == 1
    assert "already exists; add --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"an earlier result"
    assert leftovers(tmp_path, *inputs) == ["areas.gpkg"]
    assert run(case["map"], "--zones", case["zones"], "--out", out, "--overwrite") == 0
    assert leftovers(tmp_path, *inputs) == ["areas.csv", "areas.gpkg"]
    assert len(gpd.read_file(out, layer="zones")) == 6


def test_json_progress_reports_start_progress_and_done(case, tmp_path, capsys):
    out = tmp_path / "areas.gpkg"
    argv = ["zones", str(case["map"]), "--zones", str(case["zones"]), "--out", str(out)]
    assert main([*argv, "--progress", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert (start["phase"], start["total"], start["unit"]) == ("zones", 6, "zones")
    progress = [e for e in events if e["event"] == "progress"]
    done_counts = [e["done"] for e in progress]  # zones are measured in chunks
    assert done_counts == sorted(set(done_counts)) and done_counts[-1] == 6
    assert any(e["event"] == "log" and "km²" in e["message"] for e in events)
    done = events[-1]
    assert done["event"] == "done"
    assert done["outputs"] == {"zones": str(out), "table": str(out.with_suffix(".csv"))}
    stats = done["stats"]
    assert stats["zones"] == 6
    expected_mapped = (20 + 20 + 9 + 99) / 1e6
    assert stats["mapped_km2"] == pytest.approx(expected_mapped, abs=1e-6)
    assert stats["nodata_km2"] == pytest.approx(2 / 1e6, abs=1e-6)


class CancelAfterFirstZone(Reporter):
    def advance(self, n: int = 1, **extra: object) -> None:
        super().advance(n, **extra)
        self.cancel()  # what the CLI's SIGINT and SIGTERM handlers do


def test_cancelling_between_zones_leaves_no_output(case, tmp_path):
    out = tmp_path / "areas.gpkg"
    settings = ZonesSettings(
        map=case["map"],
        zones=case["zones"],
        layer=None,
        field=None,
        out=out,
        csv=out.with_suffix(".csv"),
    )
    reporter = CancelAfterFirstZone()
    with pytest.raises(Cancelled):
        run_zones(settings, reporter)
    assert reporter.done == 1
    assert leftovers(tmp_path, case["map"], case["zones"], case["lonlat"]) == []
