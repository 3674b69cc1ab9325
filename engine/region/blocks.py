"""Cutting a region's grid into blocks, the units of work, aligned to the tiling.

`predict` lays tile cores edge to edge from the area's top-left corner (`engine.tiling`). A
block here is a run of whole cores of that same tiling: its origin is a multiple of the core
size, so a block's own `predict` places its tiles exactly where a `predict` of the whole mosaic
would, and each tile reads its margin from the mosaic around the block. The map of the region
is then the whole-mosaic map pixel for pixel.

One exception would break this: a grid no larger than one tile runs as one untiled pass. So a
last row or column of blocks no larger than a tile is merged into the one before it; a block
is always larger than a tile in at least one direction unless the whole area fits in one.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.area import Area
from engine.grid import Bounds, Grid, Window
from engine.tiling import Tiling


@dataclass(frozen=True)
class Block:
    """One unit of work: a window of the processing grid (`row`, `col`: its place)."""

    row: int
    col: int
    window: Window  # on the processing grid: what the block's `predict` maps (its settings')

    @property
    def id(self) -> str:
        return f"r{self.row:03d}_c{self.col:03d}"

    @property
    def col_off(self) -> int:
        return int(self.window.col_off)

    @property
    def row_off(self) -> int:
        return int(self.window.row_off)

    @property
    def width(self) -> int:
        return int(self.window.width)

    @property
    def height(self) -> int:
        return int(self.window.height)

    @property
    def pixels(self) -> int:
        return self.width * self.height


def spans(
    length_px: int, core_px: int, cores_per_block: int, tile_px: int
) -> list[tuple[int, int]]:
    """(offset, length) of the blocks along one axis: multiples of the core, the last one
    merged into its neighbour when it is no longer than a tile."""
    step = core_px * cores_per_block
    out = [(start, min(step, length_px - start)) for start in range(0, length_px, step)]
    if len(out) > 1 and out[-1][1] <= tile_px:
        last = out.pop()
        out[-1] = (out[-1][0], out[-1][1] + last[1])
    return out


def cores_per_block(block_px: int, tiling: Tiling) -> int:
    """Whole cores in a block of about `block_px`, and always more than a tile's worth."""
    core = tiling.core_px
    fit = max(1, round(block_px / core))
    while fit * core <= tiling.tile_size_px:
        fit += 1
    return fit


def cut(area_window: Window, tiling: Tiling, block_px: int) -> list[Block]:
    """The blocks of the area (a window of the processing grid) for `tiling`, row-major."""
    r0, c0 = int(area_window.row_off), int(area_window.col_off)
    if tiling.single:
        return [Block(0, 0, Window(c0, r0, tiling.width_px, tiling.height_px))]
    k = cores_per_block(block_px, tiling)
    rows = spans(tiling.height_px, tiling.core_px, k, tiling.tile_size_px)
    cols = spans(tiling.width_px, tiling.core_px, k, tiling.tile_size_px)
    return [
        Block(i, j, Window(c0 + c, r0 + r, w, h))
        for i, (r, h) in enumerate(rows)
        for j, (c, w) in enumerate(cols)
    ]


def reaches(block: Block, grid: Grid, area: Area, footprints: list[Bounds]) -> bool:
    """Whether any data or mask polygon reaches the block (cheap: nothing is read)."""
    if not area.touches(grid, block.window):
        return False
    x0, y0, x1, y1 = grid.window_bounds(block.window)
    return any(b[0] < x1 and b[2] > x0 and b[1] < y1 and b[3] > y0 for b in footprints)
