"""`predict --zones` and `region --zones`: the class-area table per zone written with the map.

The table must be the one `zones` gives on the finished map, appear with the map or not at
all, and a zones layer that cannot serve must fail before the model loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import rasterio
import shapely

from engine.cli import main
from tests.fixtures.bdortho import RegionCase
from tests.fixtures.generate import make_orthophoto

LEFT, TOP, SIDE_M = 652000.0, 6862000.0, 256 * 0.2  # make_orthophoto's default origin, 256 px
PREDICT_ARGS = ("--tile-size", "256", "--margin", "32", "--device", "cpu", "--threads", "1")


def write_zones(path: Path, left: float, top: float, side_m: float) -> Path:
    """Two communes: one covering the whole square and beyond, one its western half."""
    whole = shapely.box(left - 5, top - side_m - 5, left + side_m + 5, top + 5)
    west = shapely.box(left, top - side_m, left + side_m / 2, top)
    frame = gpd.GeoDataFrame({"insee": ["33001", "33002"]}, geometry=[whole, west], crs=2154)
    frame.to_file(path, layer="communes")
    return path


def table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).sort_values(["zone", "code"]).reset_index(drop=True)


def test_predict_writes_the_zone_table_with_the_map(unet5: Path, tmp_path: Path, capsys) -> None:
    ortho = make_orthophoto(tmp_path / "ortho.tif", width=256, height=256, bands=5, seed=4)
    zones = write_zones(tmp_path / "communes.gpkg", LEFT, TOP, SIDE_M)
    out = tmp_path / "map.tif"
    args = ["predict", str(ortho), str(out), "--model", str(unet5), *PREDICT_ARGS]
    code = main(
        [*args, "--stats", str(tmp_path / "s.json"), "--zones", str(zones)]
        + ["--zones-field", "insee", "--progress", "json"]
    )
    assert code == 0
    done = [json.loads(x) for x in capsys.readouterr().out.splitlines()][-1]
    assert done["event"] == "done"
    assert done["outputs"]["zones"] == str(tmp_path / "map_zones.gpkg")
    assert done["outputs"]["zones_table"] == str(tmp_path / "map_zones.csv")
    assert done["stats"]["zones"]["zones"] == 2

    # the whole-map zone holds exactly the map's statistics
    stats = json.loads((tmp_path / "s.json").read_text())
    areas = gpd.read_file(tmp_path / "map_zones.gpkg").set_index("insee")
    assert areas.loc["33001", "mapped_m2"] == pytest.approx(stats["mapped_area_m2"], rel=1e-9)
    for row in stats["classes"]:
        slug = row["name"].replace(" ", "_")
        assert areas.loc["33001", f"{slug}_m2"] == pytest.approx(row["area_m2"], abs=1e-3)
    assert areas.loc["33002", "zone_m2"] == pytest.approx(SIDE_M * SIDE_M / 2)

    # the same table as `zones` gives on the finished map
    assert main(["zones", str(out), "--zones", str(zones), "--field", "insee"]
                + ["--out", str(tmp_path / "again.gpkg")]) == 0  # fmt: skip
    pd.testing.assert_frame_equal(table(tmp_path / "map_zones.csv"), table(tmp_path / "again.csv"))


def test_predict_refuses_a_bad_zone_field_before_any_work(unet5: Path, tmp_path: Path) -> None:
    ortho = make_orthophoto(tmp_path / "ortho.tif", width=256, height=256, bands=5, seed=4)
    zones = write_zones(tmp_path / "communes.gpkg", LEFT, TOP, SIDE_M)
    out = tmp_path / "map.tif"
    args = ["predict", str(ortho), str(out), "--model", str(unet5), *PREDICT_ARGS]
    assert main([*args, "--zones", str(zones), "--zones-field", "code_insee"]) == 1
    assert main([*args, "--zones-field", "insee"]) == 1  # a zones option without --zones
    assert sorted(p.name for p in tmp_path.iterdir()) == ["communes.gpkg", "ortho.tif"]


def test_region_writes_the_zone_table_of_its_map(region_case: RegionCase, tmp_path: Path) -> None:
    d = region_case.delivery
    tiles = sorted(d.rgb_dir.rglob(f"*{d.suffix}"))
    bounds = []
    for tile in tiles:
        with rasterio.open(tile) as src:
            bounds.append(src.bounds)
    left, top = min(b.left for b in bounds), max(b.top for b in bounds)
    side_m = max(b.right for b in bounds) - left
    zones = write_zones(tmp_path / "communes.gpkg", left, top, side_m)
    out = tmp_path / "region"
    assert main(region_case.args(out, "--workers", "1", "--zones", str(zones))) == 0
    assert (out / "landcover_zones.gpkg").is_file()
    assert main(["zones", str(out / "landcover.vrt"), "--zones", str(zones)]
                + ["--out", str(tmp_path / "again.gpkg")]) == 0  # fmt: skip
    pd.testing.assert_frame_equal(table(out / "landcover_zones.csv"), table(tmp_path / "again.csv"))
    whole = table(out / "landcover_zones.csv").query("zone == 1 and code > 0")  # FIDs start at 1
    assert whole["area_m2"].sum() > 0.9 * side_m * side_m  # the whole region mapped
