"""The geometry of a `predict` run, fixed before any tile is read: grids, area, tiling.

Also the contract of extra model inputs (U-T&T's Sentinel-2 series): a factory that, once the
plan is known, returns a provider of per-batch inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rasterio.windows import Window

from engine.area import Area, area_from_extent, area_from_polygons, whole_grid
from engine.errors import InvalidInput
from engine.grid import Grid
from engine.models.architectures import ExtraInputs
from engine.models.loader import LoadedModel
from engine.processing_grid import choose_processing_grid
from engine.progress import Reporter
from engine.settings import DEFAULT_MARGIN_PX, DEFAULT_TILE_SIZE_PX, PredictSettings
from engine.tiling import Tile, Tiling


@dataclass(frozen=True)
class Plan:
    """The geometry of a run, fixed before any tile is read."""

    processing: Grid  # the whole processing grid of the raster
    area: Area  # the part of it to compute
    work: Grid  # the area's own grid
    output: Grid  # the grid the map is written on
    tiling: Tiling


class ExtrasProvider(Protocol):
    """Extra model inputs per batch (U-T&T's Sentinel-2 series and metadata).

    Called with the batch's tiles, whose windows are on `plan.work`; returns the network's
    extra inputs (arrays with the batch first). `summary` adds figures to the run's stats.
    """

    def __call__(self, tiles: list[Tile]) -> ExtraInputs: ...

    def summary(self) -> dict[str, Any]: ...


# Builds the provider once the geometry is known (loads the Sentinel-2 series for the area).
ExtrasFactory = Callable[["Plan", LoadedModel, Reporter], ExtrasProvider]


def plan_run(
    settings: PredictSettings,
    loaded: LoadedModel,
    src,
    reporter: Reporter,
) -> tuple[Plan, bool]:
    """The run's grids, area and tiling; True as well when the processing grid is the source's
    own pixels (plain reads, no warping)."""
    card = loaded.card
    src_grid = Grid.of(src) if src.crs else None
    if src_grid is None or src.transform.b or src.transform.d:
        raise InvalidInput(
            f"{settings.input} has no CRS or a rotated grid; assign a CRS / warp it north-up first"
        )
    chosen = choose_processing_grid(src.crs, src_grid, card.res_m)
    reporter.log(chosen.reason)
    grid = chosen.grid
    if settings.mask:
        area = area_from_polygons(grid, settings.mask)
    elif settings.extent is not None:
        area = area_from_extent(grid, *settings.extent.in_crs_or(src.crs))
    else:
        area = whole_grid(grid)
    if settings.window is not None:  # a region's block: this window, the mask's polygons kept
        area = Area(Window(*settings.window), area.polygons)
    work = grid.subgrid(area.window)
    if settings.output_resolution == "input":
        if grid.crs != src.crs:
            raise InvalidInput(
                "--output-resolution input needs a projected input in metres; this input is "
                f"processed in {grid.crs.to_string()}: keep the default model resolution"
            )
        output = src_grid.subgrid(src_grid.clip(src_grid.window_of(work.bounds)))
    else:
        output = work
    fixed = loaded.architecture.fixed_tile
    if fixed:
        tile = settings.tile_size_px or card.tile_size_px
        if tile != card.tile_size_px:
            raise InvalidInput(
                f"model {card.name} runs on {card.tile_size_px} px tiles only "
                f"({loaded.architecture.title} is tied to that size)",
                option="--tile-size",
                model=card.name,
            )
    else:
        tile = settings.tile_size_px or card.default_tile_px or DEFAULT_TILE_SIZE_PX
    margin = settings.margin_px
    if margin is None:  # the card's own margin (FLAIR-HUB: chosen by measurement), else ours
        margin = card.margin_px if card.margin_px is not None else DEFAULT_MARGIN_PX
    tiling = Tiling(work.height, work.width, tile, margin, fixed_size=fixed)
    return Plan(grid, area, work, output, tiling), chosen.same_as_source
