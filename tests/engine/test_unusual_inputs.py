"""Unusual but valid inputs map as they should: NaN and infinity are no data and never reach
the model (in the image and in the elevation), and a world-sized extent or mask is cut to the
raster's footprint."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from engine.cli import main
from tests.fixtures.generate import make_orthophoto
from tests.fixtures.hostile import make_scene, read_codes


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scene(tmp_path_factory.mktemp("hostile"))


def _float_scene(path: Path, bad: dict[tuple[int, int, int], float], nodata: float | None) -> Path:
    """A float32 RGB raster on the 12-bit scale (values 16..4080), `bad` pixels overwritten."""
    make_orthophoto(path, 128, 128, 3, dtype="float32", seed=21)
    with rasterio.open(path) as ds:
        profile, data = ds.profile, ds.read() * 16
    for (band, row, col), value in bad.items():
        data[band, row, col] = value
    if nodata is not None:
        profile["nodata"] = nodata
    path.unlink()
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return path


def test_nan_and_infinity_are_nodata_and_never_reach_the_model(tmp_path: Path, unet3: Path) -> None:
    pixels = {(0, 10, 10): np.nan, (1, 20, 20): np.inf, (2, 30, 30): -np.inf}
    hostile = _float_scene(tmp_path / "nan.tif", pixels, nodata=None)
    zeroed = _float_scene(tmp_path / "zero.tif", dict.fromkeys(pixels, 0.0), nodata=0.0)
    assert main(["predict", str(hostile), str(tmp_path / "a.tif"), "--model", str(unet3),
                 "--progress", "none"]) == 0  # fmt: skip
    assert main(["predict", str(zeroed), str(tmp_path / "b.tif"), "--model", str(unet3),
                 "--progress", "none"]) == 0  # fmt: skip
    a, b = read_codes(tmp_path / "a.tif"), read_codes(tmp_path / "b.tif")
    assert all(a[r, c] == 0 for _, r, c in pixels) and len(np.unique(a)) > 3
    assert np.array_equal(a, b)  # the same 12-bit scale, the same pixels marked invalid


def test_nan_in_the_elevation_raster_is_nodata(tmp_path: Path, scene: Path, unet5: Path) -> None:
    with rasterio.open(scene / "dsm.tif") as ds:
        profile, dsm = ds.profile, ds.read(1).astype("float32")
    dsm[5, 7] = np.nan
    with rasterio.open(tmp_path / "dsm.tif", "w", **(profile | {"dtype": "float32"})) as ds:
        ds.write(dsm, 1)
    args = [str(scene / "rgbi.tif"), "--model", str(unet5), "--progress", "none", "--elevation"]
    assert (
        main(["predict", args[0], str(tmp_path / "a.tif"), *args[1:], str(tmp_path / "dsm.tif")])
        == 0
    )
    assert (
        main(["predict", args[0], str(tmp_path / "b.tif"), *args[1:], str(scene / "dsm.tif")]) == 0
    )
    a, b = read_codes(tmp_path / "a.tif"), read_codes(tmp_path / "b.tif")
    assert a[5, 7] == 0 and b[5, 7] > 0
    assert (a != b).sum() < 64 * 64 * 0.1  # the rest is the same scene


def test_world_extent_and_world_mask_map_the_whole_raster(
    tmp_path: Path, scene: Path, unet3: Path
) -> None:
    """A box larger than Lambert-93's domain is cut to the raster's footprint first."""
    world = box(-180, -90, 180, 90)
    gpd.GeoDataFrame({"id": [1]}, geometry=[world], crs="EPSG:4326").to_file(tmp_path / "w.gpkg")
    common = ["--model", str(unet3), "--progress", "none"]
    rgb = str(scene / "rgb.tif")
    assert (
        main(
            [
                "predict",
                rgb,
                str(tmp_path / "e.tif"),
                "--extent",
                "-180,-90,180,90,EPSG:4326",
                *common,
            ]
        )
        == 0
    )
    assert (
        main(["predict", rgb, str(tmp_path / "m.tif"), "--mask", str(tmp_path / "w.gpkg"), *common])
        == 0
    )
    assert main(["predict", rgb, str(tmp_path / "all.tif"), *common]) == 0
    whole = read_codes(tmp_path / "all.tif")
    assert np.array_equal(read_codes(tmp_path / "e.tif"), whole)
    assert np.array_equal(read_codes(tmp_path / "m.tif"), whole)
