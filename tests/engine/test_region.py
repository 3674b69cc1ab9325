"""`flair-landcover region` on an imitation BD ORTHO delivery: the region's map is `predict`'s.

Real files (JPEG 2000 when GDAL has the driver), a real checkpoint layout, a real Dask
`LocalCluster` of worker processes on 127.0.0.1. The tiling is tiny (128 px tiles, 16 px
margin, blocks of two 96 px cores) so the 384 px region is four blocks whose tiles read their
margins across block and file edges.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from engine.cli import main
from tests.fixtures.bdortho import RegionCase, make_delivery, read_map

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def case(region_case: RegionCase) -> RegionCase:
    return region_case


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_delivery_is_bd_ortho_like(case) -> None:
    d = case.delivery
    assert "OHR_RVB_0M20_JP2-E080_LAMB93_D33-2024" in str(d.rgb_dir)
    assert d.names[0].startswith("33-2024-0410-6425-LA93-0M20-E080")
    assert sorted(p.name for p in d.irc_dir.rglob(f"*{d.suffix}")) == sorted(d.names)
    with rasterio.Env() as env:
        assert d.suffix == (".jp2" if "JP2OpenJPEG" in env.drivers() else ".tif")


def check_region(out: Path, case) -> dict:
    """The region's map is predict's, styled; every block done with checksums; statistics
    count every pixel. Returns the manifest."""
    mapped = read_map(out / "landcover.vrt")
    assert mapped.shape == case.reference.shape == (384, 384)
    assert np.array_equal(mapped, case.reference)
    with rasterio.open(out / "landcover.vrt") as src:
        assert src.nodata == 0
        assert src.colormap(1)[1][:3] == (219, 14, 154)  # building, #db0e9a
    assert (out / "landcover.qml").is_file()
    m = manifest(out)
    assert [b["state"] for b in m["blocks"].values()] == ["done"] * 4
    assert all(len(b["outputs"]["output"]["sha256"]) == 64 for b in m["blocks"].values())
    stats = json.loads((out / "stats.json").read_text())
    assert sum(c["pixels"] for c in stats["classes"]) + stats["nodata_pixels"] == 384 * 384
    codes, counts = np.unique(case.reference, return_counts=True)
    by_code = {c["code"]: c["pixels"] for c in stats["classes"]}
    assert all(by_code.get(int(c), 0) == n for c, n in zip(codes, counts, strict=True) if c)
    assert len((out / "stats_blocks.csv").read_text().splitlines()) == 5
    return m


def test_region_equals_predict_resumes_and_refuses_changes(case, tmp_path: Path, capsys) -> None:
    out = tmp_path / "region"
    assert main(case.args(out, "--workers", "1", "--polygons", "--progress", "json")) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    region = [e for e in events if e.get("phase") == "region"]
    assert region[0]["event"] == "start" and region[0]["total"] == 4
    assert region[-1]["done"] == 4 and region[-1]["workers_alive"] == 1
    record = events[-1]["run"]  # the done event says what ran, as predict's does
    assert events[-1]["event"] == "done" and set(record) == {
        "model",
        "channels",
        "runtime",
        "tiling",
    }
    assert [c["channel"] for c in record["channels"]] == ["R", "G", "B", "NIR"]
    assert record["tiling"] == {"tile_size_px": 128, "margin_px": 16, "batch": 1}
    check_region(out, case)
    import geopandas as gpd

    polygons = gpd.read_file(out / "landcover.gpkg")
    assert set(polygons["code"]) == set(np.unique(case.reference)) - {0}

    # the same command again: nothing left to compute (no cluster is even started)
    assert main(case.args(out, "--workers", "1", "--polygons")) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["run"] == 2 and run["computed_this_run"] == 0 and run["blocks"]["done"] == 4

    # other settings: refused before any work, unless --restart
    before = manifest(out)
    assert main(case.args(out, "--workers", "2", "--confidence")) == 1
    err = capsys.readouterr().err
    assert "other settings (changed: confidence, polygons)" in err and "--restart" in err
    assert manifest(out) == before

    assert main(case.args(out, "--workers", "2", "--confidence", "--restart")) == 0
    after = check_region(out, case)  # two workers, the same map
    assert after["runs"] == 1 and {b["run"] for b in after["blocks"].values()} == {1}
    confidence = read_map(out / "confidence.vrt")
    assert confidence.shape == (384, 384) and confidence[case.reference > 0].min() > 0


def test_input_problems_listed_before_any_work(tmp_path: Path, case, capsys) -> None:
    d = make_delivery(tmp_path / "bad", tile_px=64, missing_irc=((1, 2),))
    rgb_files = sorted(d.rgb_dir.rglob(f"*{d.suffix}"))
    rgb_files[0].write_bytes(b"not a raster at all")  # unreadable
    odd = rgb_files[1].with_name("33-2024-0499-6499-LA93-0M20-E080.tif")
    with rasterio.open(rgb_files[1]) as src:
        profile = src.profile | {"driver": "GTiff", "crs": "EPSG:32631"}
        data = src.read()
    with rasterio.open(odd, "w", **profile) as dst:
        dst.write(data)
    out = tmp_path / "out"
    args = [
        "region",
        str(out),
        "--rgb",
        str(d.rgb_dir),
        "--irc",
        d.irc_glob,
        "--model",
        str(case.checkpoint),
        "--elevation",
        str(tmp_path / "dsm" / "*.tif"),
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "problem(s)" in err
    assert f"{rgb_files[0]} cannot be read" in err
    assert "not in EPSG:2154" in err and "33-2024-0499-6499-LA93-0M20-E080.tif (EPSG:32631)" in err
    missing = "--irc (IRC) lacks 2 tile(s) that --rgb (RVB) has: 33-2024-0412-6424-LA93-0M20-E080"
    assert missing in err  # the tile left out, and the odd one in another CRS
    assert "--elevation:" in err and "matches no file" in err
    assert not (out / "manifest.json").exists() and not (out / "blocks").exists()


def test_mask_skips_blocks_unread(case, tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    x0, y1 = 410_000.0, 6_425_000.0  # the delivery's top-left corner; 384 px = 76.8 m
    corners = [box(x0 + 5, y1 - 30, x0 + 30, y1 - 5), box(x0 + 50, y1 - 75, x0 + 75, y1 - 50)]
    mask = tmp_path / "area.gpkg"
    gpd.GeoDataFrame(geometry=corners, crs="EPSG:2154").to_file(mask)
    out = tmp_path / "region"
    assert main(case.args(out, "--workers", "1", "--mask", str(mask))) == 0
    states = {k: b["state"] for k, b in manifest(out)["blocks"].items()}
    assert states == {
        "r000_c000": "done",
        "r000_c001": "skipped",
        "r001_c000": "skipped",
        "r001_c001": "done",
    }
    assert sorted(p.name for p in (out / "blocks").glob("*.tif")) == [
        "r000_c000.tif",
        "r001_c001.tif",
    ]
    reference = tmp_path / "reference.tif"
    mosaic = str(out / "inputs" / "mosaic.vrt")
    assert (
        main(
            [
                "predict",
                mosaic,
                str(reference),
                "--model",
                str(case.checkpoint),
                "--mask",
                str(mask),
                "--tile-size",
                "128",
                "--margin",
                "16",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert np.array_equal(read_map(out / "landcover.vrt"), read_map(reference))


@pytest.mark.parametrize(("height", "width"), [(10_000, 23_456), (1_300, 2_100), (700, 900)])
def test_blocks_are_whole_cores_of_the_tiling(height: int, width: int) -> None:
    from rasterio.windows import Window

    from engine.region.blocks import cut
    from engine.tiling import Tiling

    tiling = Tiling(height, width, 1280, 128)
    blocks = cut(Window(5, 7, width, height), tiling, 4000)
    covered = np.zeros((height, width), dtype=np.int8)
    for b in blocks:
        assert (b.row_off - 7) % 1024 == 0 and (b.col_off - 5) % 1024 == 0  # core origins
        block_tiling = Tiling(b.height, b.width, 1280, 128)
        assert block_tiling.single == tiling.single  # tiled like the whole grid, never untiled
        covered[
            b.row_off - 7 : b.row_off - 7 + b.height, b.col_off - 5 : b.col_off - 5 + b.width
        ] += 1
    assert (covered == 1).all()


def test_default_tile_pattern_finds_jp2_tif_and_tiff_in_subfolders(tmp_path: Path) -> None:
    """The default pattern (the plugin's too) finds a GeoTIFF delivery's tiles in their
    subfolders, and `.tiff` and `.jp2` files beside them; sidecars and other files are not
    tiles."""
    from engine.region.audit import Findings
    from engine.region.inputs import expand
    from engine.region.products import DEFAULT_PATTERN as DEFAULT_TILE_PATTERN

    d = make_delivery(tmp_path / "tif", rows=1, cols=2, tile_px=32, jp2=False)
    found = expand([str(d.rgb_dir / DEFAULT_TILE_PATTERN)], "RVB", Findings())
    assert sorted(Path(p).name for p in found) == sorted(d.names)
    other = tmp_path / "mixed" / "a" / "b"
    other.mkdir(parents=True)
    for name in ("x.tiff", "y.jp2", "z.tif", "z.tif.aux.xml", "notes.txt"):
        (other / name).write_bytes(b"")
    findings = Findings()
    walked = expand([str(tmp_path / "mixed" / DEFAULT_TILE_PATTERN)], "RVB", findings)
    assert sorted(Path(p).name for p in walked) == ["x.tiff", "y.jp2", "z.tif"]
