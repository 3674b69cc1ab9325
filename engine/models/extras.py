"""The contract of extra model inputs: what a family takes besides the aerial tile.

A family whose network takes more than the tile (U-T&T: a Sentinel-2 series and the acquisition's
metadata) names a supplier in the architecture table. Given the run's options, the supplier
returns a factory; once the run's geometry is planned and the model loaded, the factory returns a
provider that gives each batch of tiles its `ExtraInputs`. The run's plan and loaded model are
described here by what the suppliers read of them (`RunGeometry`, `RunModel`), so the suppliers
sit beside the table, below the runs that call them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.grid import Grid
from engine.models.card import ModelCard
from engine.progress import Reporter
from engine.sentinel2.settings import Sentinel2Options
from engine.tiling import Tile, Tiling


@dataclass(frozen=True)
class ExtraInputs:
    """Inputs besides the aerial tile, batch first (U-T&T: the Sentinel-2 series).

    `s2` (B, T, C, H, W) reflectances, `dates` (B, T) day offsets, `metadata` (B, M) the
    encoded acquisition; None for the aerial branch alone.
    """

    s2: np.ndarray | None = None
    dates: np.ndarray | None = None
    metadata: np.ndarray | None = None


class ExtrasProvider(Protocol):
    """Extra model inputs per batch (U-T&T's Sentinel-2 series and metadata).

    Called with the batch's tiles, whose windows are on the plan's `work` grid; returns the
    network's extra inputs (arrays with the batch first). `summary` adds figures to the run's
    stats.
    """

    def __call__(self, tiles: list[Tile]) -> ExtraInputs: ...

    def summary(self) -> dict[str, Any]: ...


class RunGeometry(Protocol):
    """What a supplier reads of a run's plan (`engine.planning.Plan`)."""

    @property
    def work(self) -> Grid: ...

    @property
    def tiling(self) -> Tiling: ...


class RunModel(Protocol):
    """What a supplier reads of the loaded model (`engine.models.loader.LoadedModel`)."""

    @property
    def card(self) -> ModelCard: ...

    @property
    def uses_metadata(self) -> bool: ...


# Builds the provider once the geometry is known (loads the Sentinel-2 series for the area).
ExtrasFactory = Callable[[RunGeometry, RunModel, Reporter], ExtrasProvider]

# The run's Sentinel-2 options and its input raster -> the factory; it opens the source at
# once (nothing fetched), so a wrong source fails before the model loads.
ExtrasSupplier = Callable[[Sentinel2Options, "Path | str"], ExtrasFactory]
