"""`predict` end to end: outputs, styling, statistics, polygons, determinism, IGN's scheme."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from engine.cli import main
from engine.inference import Predictor
from engine.models.loader import load_model
from tests.fixtures.generate import make_orthophoto


def run(*args: object) -> int:
    return main(["predict", *(str(a) for a in args), "--progress", "none", "--threads", "2"])


def test_outputs_are_styled_and_complete(tmp_path: Path, ortho5: Path, unet5: Path) -> None:
    out = tmp_path / "map.tif"
    code = run(
        ortho5,
        out,
        "--model",
        unet5,
        "--inactive",
        "15,16,17,19",
        "--tile-size",
        "512",
        "--confidence",
        tmp_path / "conf.tif",
        "--probabilities",
        tmp_path / "p.tif",
        "--stats",
        tmp_path / "s.json",
        "--polygons",
        tmp_path / "poly.gpkg",
    )
    assert code == 0
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height, ds.count, ds.dtypes[0]) == (700, 600, 1, "uint8")
        assert ds.nodata == 0 and ds.crs.to_epsg() == 2154
        assert ds.profile["tiled"] and ds.compression.name.lower() == "deflate"
        assert ds.overviews(1) == [2]
        assert ds.colormap(1)[1] == (0xDB, 0x0E, 0x9A, 255) and ds.colormap(1)[0][3] == 0
        codes = ds.read(1)
    assert set(np.unique(codes)) <= set(range(1, 15)) | {18}
    assert "<Category>building</Category>" in (tmp_path / "map.tif.aux.xml").read_text()
    qml = (tmp_path / "map.qml").read_text()
    assert qml.count("<paletteEntry") == 19 and 'label="7 deciduous"' in qml
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.count == 15 and ds.descriptions[0] == "p(1 building) (%)"
    with rasterio.open(tmp_path / "conf.tif") as ds:
        confidence = ds.read(1)  # percent: the top of 15 classes holds at least 1/15
        assert confidence.min() >= 100 // 15 and confidence.max() <= 100
    stats = json.loads((tmp_path / "s.json").read_text())
    counts = {row["code"]: row["pixels"] for row in stats["classes"]}
    assert counts == {c: int((codes == c).sum()) for c in range(1, 20)}
    assert stats["mapped_area_m2"] == pytest.approx(700 * 600 * 0.04)
    import geopandas as gpd

    polygons = gpd.read_file(tmp_path / "poly.gpkg")
    assert polygons.area.sum() == pytest.approx(700 * 600 * 0.04)
    assert set(polygons["code"]) == set(np.unique(codes))
    assert not list(tmp_path.glob(".*partial*"))


def test_stats_as_csv(tmp_path: Path, ortho5: Path, unet5: Path) -> None:
    assert run(ortho5, tmp_path / "m.tif", "--model", unet5, "--stats", tmp_path / "s.csv") == 0
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert len(rows) == 20 and rows[0]["name"] == "building"
    assert sum(float(r["percent"] or 0) for r in rows) == pytest.approx(100, abs=0.01)


def test_same_input_same_bytes(tmp_path: Path, ortho5: Path, unet5: Path) -> None:
    for name in ("a.tif", "b.tif"):
        assert (
            run(ortho5, tmp_path / name, "--model", unet5, "--tile-size", "512", "--margin", "64")
            == 0
        )
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()


def test_ign_scheme_is_reproduced_pixel_for_pixel(tmp_path: Path, unet5: Path) -> None:
    """512 px tiles, 128 px margin on a 768 px raster: the map IGN's flair-detect computes.

    The reference below is written from IGN's description: pad the raster with raw zeros,
    run every 512 px window whose 256 px core starts at a multiple of 256, keep the cores.
    """
    ortho = make_orthophoto(tmp_path / "o.tif", 768, 768, 5, seed=11)
    assert (
        run(ortho, tmp_path / "m.tif", "--model", unet5, "--tile-size", "512", "--margin", "128")
        == 0
    )
    with rasterio.open(tmp_path / "m.tif") as ds:
        ours = ds.read(1)
    with rasterio.open(ortho) as ds:
        raw = ds.read()
    padded = np.zeros((5, 768 + 256, 768 + 256), dtype=np.uint8)
    padded[:, 128:-128, 128:-128] = raw
    predictor = Predictor(load_model(str(unet5)), "cpu")
    expected = np.zeros((768, 768), dtype=np.uint8)
    for r in range(0, 768, 256):
        for c in range(0, 768, 256):
            window = padded[None, :, r : r + 512, c : c + 512]
            expected[r : r + 256, c : c + 256] = predictor.predict(window).codes[
                0, 128:384, 128:384
            ]
    assert np.array_equal(ours, expected)


def test_one_tile_raster_is_a_direct_forward(tmp_path: Path, unet5: Path) -> None:
    """A 512 x 512 raster, default settings: the map is the argmax of one forward pass."""
    ortho = make_orthophoto(tmp_path / "o.tif", 512, 512, 5, seed=12)
    assert run(ortho, tmp_path / "m.tif", "--model", unet5) == 0
    with rasterio.open(tmp_path / "m.tif") as ds:
        ours = ds.read(1)
    with rasterio.open(ortho) as ds:
        raw = ds.read()
    loaded = load_model(str(unet5))
    predictor = Predictor(loaded, "cpu")
    logits = predictor.logits(raw[None])
    expected = (logits.argmax(1)[0] + 1).astype(np.uint8)
    assert np.array_equal(ours, expected)


def test_batch_size_does_not_change_the_map(tmp_path: Path, ortho5: Path, unet5: Path) -> None:
    assert (
        run(ortho5, tmp_path / "a.tif", "--model", unet5, "--tile-size", "256", "--margin", "32")
        == 0
    )
    assert (
        run(
            ortho5,
            tmp_path / "b.tif",
            "--model",
            unet5,
            "--tile-size",
            "256",
            "--margin",
            "32",
            "--batch-size",
            "3",
        )
        == 0
    )
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert (a.read(1) == b.read(1)).mean() > 0.999
