"""Grid: blocks (count, single coverage, clipped edges), the aligned 10 m grid, windows, forms."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from engine.errors import InvalidInput
from engine.grid import Grid

L93 = CRS.from_epsg(2154)


def _grid(width: int, height: int, res_m: float = 0.2) -> Grid:
    return Grid(L93, Affine(res_m, 0.0, 650000.0, 0.0, -res_m, 6860000.0), width, height)


@pytest.mark.parametrize(
    ("width", "height", "block_px"),
    [(50, 30, 16), (64, 64, 16), (1, 1, 256), (300, 7, 100), (257, 513, 256)],
)
def test_blocks_cover_the_grid_once_row_major(width: int, height: int, block_px: int) -> None:
    grid = _grid(width, height)
    blocks = list(grid.blocks(block_px))
    assert len(blocks) == grid.num_blocks(block_px)
    assert len(blocks) == -(-width // block_px) * -(-height // block_px)
    cover = np.zeros((height, width), np.int32)
    for window in blocks:
        assert isinstance(window, Window)
        assert grid.clip(window) == window  # edge blocks are clipped to the grid
        rows, cols = window.toslices()
        cover[rows, cols] += 1
    assert (cover == 1).all()
    offsets = [(int(w.row_off), int(w.col_off)) for w in blocks]
    assert offsets == sorted(offsets)  # row-major


def test_edge_blocks_are_clipped() -> None:
    blocks = list(_grid(50, 30).blocks(16))
    assert blocks[0] == Window(0, 0, 16, 16)
    assert blocks[3] == Window(48, 0, 2, 16)  # last column: 50 - 48 px wide
    assert blocks[-1] == Window(48, 16, 2, 14)  # last row: 30 - 16 px high
    assert list(_grid(16, 16).blocks(16)) == [Window(0, 0, 16, 16)]


def test_aligned_grid_snaps_to_the_resolution_and_adds_the_buffer() -> None:
    grid = Grid.aligned(L93, (1001.0, 2003.0, 1999.0, 2999.0), 10.0, buffer_px=20)
    # corners on multiples of 10 m: 1000..2000 x 2000..3000, then 20 px (200 m) on every side
    assert grid.bounds == (800.0, 1800.0, 2200.0, 3200.0)
    assert (grid.width, grid.height, grid.res_m, grid.crs) == (140, 140, 10.0, L93)
    assert grid.transform == Affine(10.0, 0.0, 800.0, 0.0, -10.0, 3200.0)
    exact = Grid.aligned(L93, (1000.0, 2000.0, 2000.0, 3000.0), 10.0)
    assert exact.bounds == (1000.0, 2000.0, 2000.0, 3000.0) and exact.shape == (100, 100)
    for empty in [(10.0, 0.0, 0.0, 10.0), (0.0, 0.0, 0.0, 10.0), (0.0, 0.0, float("nan"), 1.0)]:
        with pytest.raises(InvalidInput, match="empty"):
            Grid.aligned(L93, empty)


def test_centred_window_and_subgrid() -> None:
    grid = Grid.aligned(L93, (1001.0, 2003.0, 1999.0, 2999.0), 10.0, buffer_px=20)
    # (1500, 2500) is the corner at column 70, row 70; the 40 px square starts 20 before
    assert grid.centred_window(1500.0, 2500.0, 40) == Window(50, 50, 40, 40)
    assert grid.centred_window(1504.9, 2495.1, 40) == Window(50, 50, 40, 40)
    outside = grid.centred_window(900.0, 2500.0, 40)
    assert outside == Window(-10, 50, 40, 40) and grid.clip(outside) != outside
    sub = grid.subgrid(Window(50, 50, 40, 40))
    assert sub.bounds == (1300.0, 2300.0, 1700.0, 2700.0) and sub.shape == (40, 40)


def test_json_form_round_trips_and_geobox_matches() -> None:
    grid = Grid.aligned(CRS.from_epsg(32631), (500000.0, 5000000.0, 501000.0, 5001000.0), 10.0, 20)
    assert grid.to_dict() == {
        "crs": "EPSG:32631",
        "x_min": 499800.0,
        "y_max": 5001200.0,
        "res_m": 10.0,
        "width_px": 140,
        "height_px": 140,
    }
    assert Grid.from_dict(json.loads(json.dumps(grid.to_dict()))) == grid
    box = grid.to_geobox()
    assert box.shape == (140, 140) and box.affine == grid.transform and box.crs.epsg == 32631
    lon0, lat0, lon1, lat1 = grid.lonlat_bounds()
    assert 2.9 < lon0 < lon1 < 3.1 and 45.1 < lat0 < lat1 < 45.2


def test_grid_of_a_raster_and_same_as(tmp_path) -> None:
    path = tmp_path / "r.tif"
    grid = _grid(20, 10)
    profile = {"driver": "GTiff", "width": 20, "height": 10, "count": 1, "dtype": "uint8"}
    with rasterio.open(path, "w", crs=grid.crs, transform=grid.transform, **profile):
        pass
    with rasterio.open(path) as ds:
        assert Grid.of(ds).same_as(grid)
    assert not grid.same_as(_grid(20, 11))
    assert not grid.same_as(_grid(20, 10, res_m=0.4))
