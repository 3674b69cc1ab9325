"""What a run writes: nothing when the disk fills at the last phase (a real tmpfs mounted by the
test: root only, skipped elsewhere), byte-identical compact files from the same run, and
statistics that count every pixel."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.shutil
from shapely.geometry import box

from engine.cli import main
from tests.fixtures.generate import make_orthophoto
from tests.fixtures.predict_process import engine, files

# --- a full disk at the last phase --------------------------------------------------------------


@pytest.fixture()
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True, check=False)


def _mount_tmpfs(mount: Path, size_kb: int) -> None:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def test_a_full_disk_while_writing_polygons_leaves_nothing(
    capsys: pytest.CaptureFixture, tmp_path: Path, tiny_disk: Path, ortho5: Path, unet5: Path
) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    args = ["--model", str(unet5), "--progress", "none"]
    assert (
        main(
            [
                "predict",
                str(ortho5),
                str(probe / "m.tif"),
                "--stats",
                str(probe / "s.json"),
                "--polygons",
                str(probe / "m.gpkg"),
                *args,
            ]
        )
        == 0
    )
    sizes = {p.name: p.stat().st_size for p in probe.iterdir()}
    raster_kb = (
        3 * sizes["m.tif"] + sizes["m.qml"] + sizes["m.tif.aux.xml"] + sizes["s.json"]
    ) // 1024
    assert sizes["m.gpkg"] > 4 * (raster_kb + 64) * 1024, sizes  # the polygons cannot fit
    _mount_tmpfs(tiny_disk, raster_kb + 64)
    capsys.readouterr()
    code = main(
        [
            "predict",
            str(ortho5),
            str(tiny_disk / "m.tif"),
            "--stats",
            str(tiny_disk / "s.json"),
            "--polygons",
            str(tiny_disk / "m.gpkg"),
            *args,
        ]
    )
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert "disk holding" in last and "is full" in last and "report it" not in last
    assert files(tiny_disk) == []


# --- determinism, size, statistics -------------------------------------------------------------


def test_same_run_gives_byte_identical_compact_files(tmp_path: Path, unet5: Path) -> None:
    ortho = make_orthophoto(tmp_path / "o.tif", 1500, 1300, 5, seed=31)
    digests = set()
    for i in range(3):
        out = tmp_path / f"m{i}.tif"
        assert (
            main(
                [
                    "predict",
                    str(ortho),
                    str(out),
                    "--model",
                    str(unet5),
                    "--tile-size",
                    "512",
                    "--confidence",
                    str(tmp_path / f"c{i}.tif"),
                    "--progress",
                    "none",
                ]
            )
            == 0
        )
        digests.add((out.read_bytes(), (tmp_path / f"c{i}.tif").read_bytes()))
    assert len(digests) == 1
    with rasterio.open(tmp_path / "m0.tif") as ds:
        assert len(ds.block_shapes) == 1 and ds.block_shapes[0] == (512, 512)
        assert ds.overviews(1) == [2, 4]
    # gdal_translate -co TILED=YES -co COMPRESS=DEFLATE of the same pixels, overviews copied
    reference = tmp_path / "translated.tif"
    rasterio.shutil.copy(
        tmp_path / "m0.tif",
        reference,
        driver="GTiff",
        TILED="YES",
        COMPRESS="DEFLATE",
        BLOCKXSIZE=512,
        BLOCKYSIZE=512,
        COPY_SRC_OVERVIEWS="YES",
    )
    assert (tmp_path / "m0.tif").stat().st_size <= reference.stat().st_size * 1.05 + 4096


def test_statistics_count_every_pixel_of_a_masked_area(tmp_path: Path, unet5: Path) -> None:
    ortho = make_orthophoto(tmp_path / "o.tif", 1024, 1024, 5, seed=5)
    x0, y0 = 652000.0, 6862000.0 - 1024 * 0.2
    mask = gpd.GeoDataFrame(
        geometry=[
            box(x0 + 10, y0 + 10, x0 + 40, y0 + 40),
            box(x0 + 160, y0 + 160, x0 + 200, y0 + 200),
        ],
        crs="EPSG:2154",
    )
    mask.to_file(tmp_path / "mask.gpkg")
    assert (
        main(
            [
                "predict",
                str(ortho),
                str(tmp_path / "m.tif"),
                "--model",
                str(unet5),
                "--tile-size",
                "256",
                "--margin",
                "32",
                "--mask",
                str(tmp_path / "mask.gpkg"),
                "--stats",
                str(tmp_path / "s.json"),
                "--progress",
                "none",
            ]
        )
        == 0
    )
    stats = json.loads((tmp_path / "s.json").read_text())
    with rasterio.open(tmp_path / "m.tif") as ds:
        codes = ds.read(1)
    assert stats["nodata_pixels"] == int((codes == 0).sum())
    assert sum(row["pixels"] for row in stats["classes"]) == int((codes > 0).sum())
    assert stats["nodata_pixels"] + sum(r["pixels"] for r in stats["classes"]) == codes.size


def test_an_area_without_a_valid_pixel_warns_and_says_so(tmp_path: Path, unet5: Path) -> None:
    ortho = make_orthophoto(tmp_path / "o.tif", 300, 300, 5, seed=6, nodata=0)
    with rasterio.open(ortho, "r+") as ds:
        ds.write(np.zeros((5, 300, 300), dtype=np.uint8))
    proc = engine(ortho, tmp_path / "m.tif", "--model", unet5, "--stats", tmp_path / "s.json")
    out, _ = proc.communicate(timeout=120)
    events = [json.loads(line) for line in out.splitlines()]
    assert proc.returncode == 0
    assert any(
        e["event"] == "log" and e["level"] == "WARNING" and "no valid pixel" in e["message"]
        for e in events
    )
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["mapped_area_m2"] == 0 and stats["nodata_pixels"] == 300 * 300
    assert stats["warning"] == "no valid pixel in the area"
    assert os.path.exists(tmp_path / "m.tif")
