"""Settings of a region run: one frozen record, validated once at the boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import InvalidInput
from engine.figures.zone_table import ZoneTable
from engine.models.overrides import CardOverrides

# About 10,000 px: ten cores of the default 1280/128 tiling (0.2 m: 2 km x 2 km, 4.2 km2)
DEFAULT_BLOCK_PX = 10_240
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class ProductInputs:
    """Where the region's rasters are: globs, folders or files per product, or one raster."""

    rgb: tuple[str, ...] = ()  # RVB product (R, G, B)
    irc: tuple[str, ...] = ()  # IRC product (NIR, R, G): its band 1 gives NIR
    elevation: tuple[str, ...] = ()  # elevation tiles, band 1
    single: str | None = None  # one raster or VRT holding every band (`--input`)

    def __post_init__(self) -> None:
        if self.single and (self.rgb or self.irc):
            raise InvalidInput("give either --input or --rgb/--irc, not both")
        if not self.single and not self.rgb:
            raise InvalidInput("say what to map: --rgb 'RVB/**/*.jp2' (and --irc), or --input")


@dataclass(frozen=True)
class ClusterSettings:
    """Where the blocks run: an embedded local cluster, or an existing Dask scheduler."""

    workers: int | None = None  # local worker processes; None: from the cores
    threads_per_worker: int | None = None  # torch threads per block; None: from the cores
    scheduler: str | None = None  # tcp://HOST:8786 of a running `dask scheduler`
    retries: int = DEFAULT_RETRIES  # worker deaths or errors a block may survive

    def __post_init__(self) -> None:
        if self.scheduler and self.workers:
            raise InvalidInput(
                "--workers sizes the local cluster; with --scheduler the workers are those "
                "started by `dask worker` (give them --nthreads 1)"
            )
        for name, value in (
            ("--workers", self.workers),
            ("--threads-per-worker", self.threads_per_worker),
        ):
            if value is not None and value < 1:
                raise InvalidInput(f"{name} {value}: give 1 or more")
        if self.retries < 0:
            raise InvalidInput(f"--retries {self.retries}: give 0 or more")


@dataclass(frozen=True)
class RegionSettings:
    """Everything a region run needs; the part that shapes the outputs is `result_key`."""

    out_dir: Path
    inputs: ProductInputs
    model: str
    card_path: Path | None = None
    overrides: CardOverrides = field(default_factory=CardOverrides)
    bands: tuple[int, ...] | None = None  # band numbers of the mosaic for R, G, B[, NIR[, E]]
    mask: Path | str | None = None
    input_max: float | None = None
    device: str = "auto"
    precision: str = "auto"
    tile_size_px: int | None = None  # None: the model's own, as predict (engine.planning)
    margin_px: int | None = None
    batch_size: int = 1
    block_px: int = DEFAULT_BLOCK_PX
    confidence: bool = False
    polygons: bool = False
    zones: ZoneTable | None = None  # class areas per zone of the finished map, each run
    allow_download: bool = False
    restart: bool = False
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

    def __post_init__(self) -> None:
        if self.block_px < 1:
            raise InvalidInput(f"--block-size {self.block_px}: give a positive number of pixels")

    def result_key(self, input_files: list[dict[str, Any]]) -> dict[str, Any]:
        """What decides the pixels of every output (hashed into the manifest): the inputs,
        model, bands, area and tiling; not where or how fast the blocks run."""
        o = self.overrides
        return {
            "inputs": input_files,
            "model": self.model,
            "card": str(self.card_path) if self.card_path else None,
            "overrides": [o.channels, o.logit_codes, o.inactive_codes, o.normalization],
            "bands": self.bands,
            "mask": str(self.mask) if self.mask else None,
            "input_max": self.input_max,
            "precision": self.precision,
            "tile_size_px": self.tile_size_px,
            "margin_px": self.margin_px,
            "block_px": self.block_px,
            "confidence": self.confidence,
            "polygons": self.polygons,
        }
