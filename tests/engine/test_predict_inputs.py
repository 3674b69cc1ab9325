"""`predict` on odd inputs: real rasters, alpha, nodata, 16-bit, extents, polygons, grids."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import box

from engine.cli import main
from engine.errors import InvalidInput
from tests.fixtures.generate import make_orthophoto


def run(*args: object) -> int:
    return main(["predict", *(str(a) for a in args), "--progress", "none"])


def read(path: Path) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    with rasterio.open(path) as ds:
        return ds.read(1), ds.profile


def test_drone_rgba_2cm_utm_is_resampled_and_alpha_honoured(
    tmp_path: Path, realdata: Path, unet3: Path
) -> None:
    """The real drone image (2 cm, UTM 33N, RGBA) with a hole cut in its alpha band."""
    drone = tmp_path / "drone.tif"
    shutil.copy(realdata / "drone_rgba_2cm_utm33.tif", drone)
    with rasterio.open(drone, "r+") as ds:
        alpha = ds.read(4)
        alpha[:400, :600] = 0  # 8 x 12 m masked in the top-left corner
        ds.write(alpha, 4)
    assert run(drone, tmp_path / "m.tif", "--model", unet3) == 0
    codes, profile = read(tmp_path / "m.tif")
    assert profile["crs"].to_epsg() == 32633
    assert profile["transform"].a == pytest.approx(0.2) and codes.shape == (85, 125)
    assert (codes[:38, :58] == 0).all()  # fully inside the masked corner
    assert (codes[45:, 65:] > 0).all()  # fully outside it


def test_drone_on_its_own_grid(tmp_path: Path, realdata: Path, unet3: Path) -> None:
    src = realdata / "drone_rgba_2cm_utm33.tif"
    assert run(src, tmp_path / "fine.tif", "--model", unet3, "--output-resolution", "input") == 0
    assert run(src, tmp_path / "model.tif", "--model", unet3) == 0
    fine, profile = read(tmp_path / "fine.tif")
    coarse, coarse_profile = read(tmp_path / "model.tif")
    with rasterio.open(src) as ds:
        assert (profile["width"], profile["height"]) == (ds.width, ds.height)
        assert profile["transform"].almost_equals(ds.transform)
    # each 2 cm pixel carries the class of the 0.2 m pixel under its centre
    t, ct = profile["transform"], coarse_profile["transform"]
    rows, cols = np.mgrid[0 : fine.shape[0] : 37, 0 : fine.shape[1] : 41]
    x = t.c + (cols + 0.5) * t.a
    y = t.f + (rows + 0.5) * t.e
    cr = np.floor((y - ct.f) / ct.e).astype(int)
    cc = np.floor((x - ct.c) / ct.a).astype(int)
    assert (fine[rows, cols] == coarse[cr, cc]).all()


def test_web_mercator_map_is_processed_in_utm_at_true_resolution(
    tmp_path: Path, realdata: Path, unet3: Path
) -> None:
    src = realdata / "rgba_2m_epsg3857.tif"
    with rasterio.open(src) as ds:
        left, bottom, right, top = ds.bounds
    extent = f"{left + 200},{top - 120},{left + 360},{top - 20},EPSG:3857"
    assert run(src, tmp_path / "m.tif", "--model", unet3, "--extent", extent) == 0
    codes, profile = read(tmp_path / "m.tif")
    assert 32601 <= profile["crs"].to_epsg() <= 32660
    assert profile["transform"].a == pytest.approx(0.2)
    # 160 x 100 Web Mercator units are about 0.62 times that on the ground at 52 N
    assert 450 < codes.shape[1] < 550 and 280 < codes.shape[0] < 340
    assert (codes > 0).mean() > 0.99


@pytest.mark.parametrize("name", ["drone_rgba_2cm_utm33.tif", "rgba_2m_epsg3857.tif"])
def test_five_band_model_refuses_rgb_rasters_naming_the_missing_bands(
    tmp_path: Path, realdata: Path, unet5: Path, name: str, capsys: pytest.CaptureFixture
) -> None:
    assert run(realdata / name, tmp_path / "m.tif", "--model", unet5) == 1
    err = capsys.readouterr().err
    assert "lacks NIR (near infrared), E (elevation)" in err
    assert not (tmp_path / "m.tif").exists()


def test_nodata_pixels_are_nodata_in_the_map(tmp_path: Path, unet3: Path) -> None:
    ortho = make_orthophoto(tmp_path / "o.tif", 300, 200, 3, nodata=0, seed=3)
    with rasterio.open(ortho, "r+") as ds:
        data = ds.read()
        data[:, 50:100, 60:160] = 0
        ds.write(data)
    assert run(ortho, tmp_path / "m.tif", "--model", unet3) == 0
    codes, _ = read(tmp_path / "m.tif")
    assert (codes[50:100, 60:160] == 0).all()
    assert (codes[:50] > 0).all() and (codes[100:] > 0).all()


def test_alpha_band_of_a_generated_raster(tmp_path: Path, unet3: Path) -> None:
    ortho = make_orthophoto(tmp_path / "o.tif", 256, 256, 3, alpha=True, seed=4)
    assert run(ortho, tmp_path / "m.tif", "--model", unet3) == 0
    codes, _ = read(tmp_path / "m.tif")
    assert (codes[:64, :64] == 0).all() and (codes[64:, :] > 0).all()


def test_16_bit_input_is_scaled_to_the_8_bit_range(tmp_path: Path, unet3: Path) -> None:
    eight = make_orthophoto(tmp_path / "u8.tif", 256, 256, 3, seed=5)
    sixteen = make_orthophoto(tmp_path / "u16.tif", 256, 256, 3, dtype="uint16", seed=5)
    assert run(eight, tmp_path / "a.tif", "--model", unet3) == 0
    assert run(sixteen, tmp_path / "b.tif", "--model", unet3) == 0
    a, _ = read(tmp_path / "a.tif")
    b, _ = read(tmp_path / "b.tif")
    assert (a == b).mean() > 0.995


def test_extent_in_another_crs(tmp_path: Path, ortho5: Path, unet5: Path) -> None:
    with rasterio.open(ortho5) as ds:
        left, bottom, right, top = ds.bounds
    lon0, lat0, lon1, lat1 = transform_bounds(
        "EPSG:2154", "EPSG:4326", left + 20, bottom + 30, left + 60, bottom + 70
    )
    assert (
        run(
            ortho5,
            tmp_path / "m.tif",
            "--model",
            unet5,
            "--extent",
            f"{lon0},{lat0},{lon1},{lat1},EPSG:4326",
        )
        == 0
    )
    codes, profile = read(tmp_path / "m.tif")
    assert profile["crs"].to_epsg() == 2154
    assert 195 <= codes.shape[1] <= 215 and 195 <= codes.shape[0] <= 215
    assert (codes > 0).all()


def test_mask_polygons_limit_the_map(tmp_path: Path, ortho5: Path, unet5: Path) -> None:
    with rasterio.open(ortho5) as ds:
        left, bottom, right, top = ds.bounds
    inner = box(left + 10, bottom + 10, left + 50, bottom + 40)
    frame = gpd.GeoDataFrame({"id": [1]}, geometry=[inner], crs="EPSG:2154").to_crs("EPSG:4326")
    frame.to_file(tmp_path / "mask.gpkg")
    assert run(ortho5, tmp_path / "m.tif", "--model", unet5, "--mask", tmp_path / "mask.gpkg") == 0
    codes, profile = read(tmp_path / "m.tif")
    assert 0.9 < (codes > 0).sum() * 0.04 / inner.area < 1.02
    assert profile["width"] < 215 and profile["height"] < 165


def test_elevation_from_a_second_raster_equals_the_stacked_file(
    tmp_path: Path, unet5: Path
) -> None:
    stacked = make_orthophoto(tmp_path / "s.tif", 300, 300, 5, seed=8)
    with rasterio.open(stacked) as ds:
        profile, data = ds.profile, ds.read()
    with rasterio.open(
        tmp_path / "rgbi.tif", "w", **(profile | {"count": 4, "photometric": "MINISBLACK"})
    ) as ds:
        ds.write(data[:4])
    with rasterio.open(tmp_path / "dsm.tif", "w", **(profile | {"count": 1})) as ds:
        ds.write(data[4:])
    assert run(stacked, tmp_path / "a.tif", "--model", unet5) == 0
    assert (
        run(
            tmp_path / "rgbi.tif",
            tmp_path / "b.tif",
            "--model",
            unet5,
            "--elevation",
            f"{tmp_path / 'dsm.tif'}:1",
        )
        == 0
    )
    assert np.array_equal(read(tmp_path / "a.tif")[0], read(tmp_path / "b.tif")[0])


def test_geographic_input_goes_to_utm() -> None:
    from affine import Affine
    from rasterio.crs import CRS

    from engine.grid import Grid
    from engine.processing_grid import choose_processing_grid

    src = Grid(CRS.from_epsg(4326), Affine(1e-5, 0, 2.35, 0, -1e-5, 48.85), 2000, 1500)
    chosen = choose_processing_grid(src.crs, src, 0.2)
    assert chosen.grid.crs.to_epsg() == 32631 and "UTM" in chosen.reason
    assert chosen.grid.res_m == 0.2 and not chosen.same_as_source
    with pytest.raises(InvalidInput, match="no CRS"):
        choose_processing_grid(None, src, 0.2)


def test_tiles_outside_distant_polygons_are_skipped_and_both_mapped(
    tmp_path: Path, ortho5: Path, unet5: Path
) -> None:
    from engine.area import Area
    from engine.grid import Grid

    with rasterio.open(ortho5) as ds:
        left, bottom, right, top = ds.bounds
        grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
    a = box(left + 2, top - 12, left + 12, top - 2)  # top-left corner
    b = box(right - 12, bottom + 2, right - 2, bottom + 12)  # bottom-right corner
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=[a, b], crs="EPSG:2154").to_file(
        tmp_path / "two.gpkg"
    )
    area = Area(grid.window_of(grid.bounds), (a, b))
    from rasterio.windows import Window

    assert area.touches(grid, Window(0, 0, 100, 100)) and not area.touches(
        grid, Window(300, 250, 100, 100)
    )
    assert not area.polygon_mask(grid, Window(300, 250, 100, 100)).any()
    assert (
        run(
            ortho5,
            tmp_path / "m.tif",
            "--model",
            unet5,
            "--mask",
            tmp_path / "two.gpkg",
            "--tile-size",
            "128",
            "--margin",
            "16",
        )
        == 0
    )
    codes, profile = read(tmp_path / "m.tif")
    assert (profile["width"], profile["height"]) == (680, 580)  # the polygons' bounds
    mapped = (codes > 0).sum() * 0.04
    assert 190 < mapped <= 202  # two 10 x 10 m squares
    assert (codes[:50, :50] > 0).all() and (codes[-50:, -50:] > 0).all()
    assert not (codes[100:-100, 100:-100] > 0).any()
