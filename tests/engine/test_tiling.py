"""Tiling: counts, exact single coverage of the grid by cores, IGN's core positions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import InvalidInput
from engine.tiling import Tiling


@pytest.mark.parametrize(
    ("h", "w", "size", "margin"),
    [(1000, 1300, 512, 128), (2048, 2048, 1024, 128), (513, 700, 256, 32), (300, 2000, 512, 64)],
)
def test_cores_cover_the_grid_exactly_once(h: int, w: int, size: int, margin: int) -> None:
    tiling = Tiling(h, w, size, margin)
    cover = np.zeros((h, w), dtype=np.int32)
    for tile in tiling:
        c = tile.core
        cover[c.row_off : c.row_off + c.height, c.col_off : c.col_off + c.width] += 1
        assert (tile.read.height, tile.read.width) == tiling.read_shape
        rows, cols = tile.core_in_read
        assert rows.stop - rows.start == c.height and cols.stop - cols.start == c.width
    assert (cover == 1).all()
    if not tiling.single:
        core = size - 2 * margin
        assert len(tiling) == math.ceil(h / core) * math.ceil(w / core) == len(list(tiling))


def test_ign_scheme_positions() -> None:
    """512/128 on 1024 px: cores start at multiples of 256, reads 128 px earlier."""
    tiles = list(Tiling(1024, 1024, 512, 128))
    assert len(tiles) == 16
    assert {t.core.col_off for t in tiles} == {0, 256, 512, 768}
    for t in tiles:
        assert t.read.col_off == t.core.col_off - 128 and t.read.row_off == t.core.row_off - 128
        assert t.core.width == t.core.height == 256


def test_small_grid_is_one_whole_image_tile() -> None:
    tiling = Tiling(300, 500, 1024, 128)
    assert tiling.single and len(tiling) == 1
    (tile,) = list(tiling)
    assert tiling.read_shape == (320, 512)
    assert (tile.core.width, tile.core.height) == (500, 300)
    assert tile.core_in_read == (slice(0, 300), slice(0, 500))


@pytest.mark.parametrize(("size", "margin"), [(500, 10), (512, 256), (512, -1), (0, 0)])
def test_bad_tiling_is_refused(size: int, margin: int) -> None:
    with pytest.raises(InvalidInput):
        Tiling(1000, 1000, size, margin)


def test_fixed_size_single_tile_keeps_the_model_tile_size() -> None:
    tiling = Tiling(300, 400, 512, 128, fixed_size=True)
    (tile,) = list(tiling)
    assert tiling.read_shape == (512, 512) and (tile.read.width, tile.read.height) == (512, 512)
    assert (tile.core.width, tile.core.height) == (400, 300)
