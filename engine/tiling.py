"""Cutting a grid into overlapping tiles whose cores cover it exactly once.

A tile is `tile_size_px` square. Its core is the central square left after removing
`margin_px` on every side; cores are laid edge to edge from the grid's top-left corner, so
with 512 px tiles and a 128 px margin they fall where IGN's flair-detect puts them (core
origins at multiples of 256, reads starting 128 px before). Only cores are written, so seams
between tiles never show. Tiles are read past the grid's edges (padded).

Count: with core = tile_size - 2 * margin, there are ceil(H / core) * ceil(W / core) tiles.
A grid no larger than one tile is one tile of exactly the grid's size rounded up to a
multiple of 32 (whole-image inference, no margin needed), or of the full tile size for models
tied to it (`fixed_size`, U-T&T).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from rasterio.windows import Window

from engine.errors import InvalidInput

SIZE_MULTIPLE = 32  # the U-Net's five poolings
# Chosen by measurement against whole-image inference (README, "Choosing the tiling"):
# closer to it than IGN's 512/128 scheme and more than twice as fast on the CPU.
DEFAULT_TILE_SIZE_PX = 1280
DEFAULT_MARGIN_PX = 128
DEFAULT_BATCH_SIZE = 1  # tiles per forward pass


@dataclass(frozen=True)
class Tile:
    """One tile: `read` is what the model sees, `core` is what gets written (grid pixels)."""

    index: int
    row: int
    col: int
    read: Window
    core: Window

    @property
    def core_in_read(self) -> tuple[slice, slice]:
        """Row and column slices of the core inside the tile's array."""
        r = int(self.core.row_off - self.read.row_off)
        c = int(self.core.col_off - self.read.col_off)
        return slice(r, r + int(self.core.height)), slice(c, c + int(self.core.width))


@dataclass(frozen=True)
class Tiling:
    """The tiles of a `height_px` x `width_px` grid."""

    height_px: int
    width_px: int
    tile_size_px: int
    margin_px: int
    fixed_size: bool = False

    def __post_init__(self) -> None:
        if self.tile_size_px <= 0 or self.tile_size_px % SIZE_MULTIPLE:
            raise InvalidInput(
                f"tile size {self.tile_size_px} must be a positive multiple of {SIZE_MULTIPLE}"
            )
        if self.margin_px < 0 or 2 * self.margin_px >= self.tile_size_px:
            raise InvalidInput(
                f"margin {self.margin_px} must be at least 0 and less than half the tile size "
                f"({self.tile_size_px})"
            )

    @property
    def single(self) -> bool:
        """True when the whole grid fits in one tile (then no margin is used)."""
        return self.height_px <= self.tile_size_px and self.width_px <= self.tile_size_px

    @property
    def core_px(self) -> int:
        return self.tile_size_px - 2 * self.margin_px

    @property
    def rows(self) -> int:
        return 1 if self.single else math.ceil(self.height_px / self.core_px)

    @property
    def cols(self) -> int:
        return 1 if self.single else math.ceil(self.width_px / self.core_px)

    def __len__(self) -> int:
        return self.rows * self.cols

    @property
    def read_shape(self) -> tuple[int, int]:
        """(height, width) of every tile's array."""
        if self.single and self.fixed_size:
            return (self.tile_size_px, self.tile_size_px)
        if self.single:
            return (_round_up(self.height_px), _round_up(self.width_px))
        return (self.tile_size_px, self.tile_size_px)

    def __iter__(self) -> Iterator[Tile]:
        if self.single:
            h, w = self.read_shape
            yield Tile(0, 0, 0, Window(0, 0, w, h), Window(0, 0, self.width_px, self.height_px))
            return
        core, m, size = self.core_px, self.margin_px, self.tile_size_px
        index = 0
        for r in range(self.rows):
            for c in range(self.cols):
                row0, col0 = r * core, c * core
                core_win = Window(
                    col0, row0, min(core, self.width_px - col0), min(core, self.height_px - row0)
                )
                read_win = Window(col0 - m, row0 - m, size, size)
                yield Tile(index, r, c, read_win, core_win)
                index += 1


def _round_up(n: int) -> int:
    return max(SIZE_MULTIPLE, math.ceil(n / SIZE_MULTIPLE) * SIZE_MULTIPLE)
