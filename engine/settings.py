"""Run settings of `predict`: one frozen record, validated once at the boundary."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

from engine.area import Extent
from engine.errors import InvalidInput
from engine.figures.zone_table import ZoneTable
from engine.io.bands import RasterBand
from engine.io.destination import OutputPaths
from engine.models.overrides import CardOverrides
from engine.tiling import SIZE_MULTIPLE

# Chosen by measurement against whole-image inference (README, "Choosing the tiling"):
# closer to it than IGN's 512/128 scheme and more than twice as fast on the CPU.
DEFAULT_TILE_SIZE_PX = 1280
DEFAULT_MARGIN_PX = 128
DEFAULT_BATCH_SIZE = 1
OUTPUT_RESOLUTIONS = ("model", "input")


@dataclass(frozen=True)
class Sentinel2Options:
    """The Sentinel-2 options of a run (U-T&T): where the series comes from, which year, and
    the aerial acquisition the metadata encodes. Unset values fall back to the model card's
    settings or to what the raster's tags say."""

    source: str | None = None  # stac[:URL], planetary-computer, catalog:PATH, flair:PATH
    year: int | None = None
    strict: bool = False  # a tile without a usable date is an error
    acquisition_date: dt.date | None = None
    acquisition_time: str | None = None  # HHhMM
    camera: str | None = None
    altitude_m: float | None = None
    monthly_average: bool | None = None  # None: the model card's
    cover_threshold: float | None = None  # None: the model card's

    def __post_init__(self) -> None:
        if self.cover_threshold is not None and not (
            math.isfinite(self.cover_threshold) and self.cover_threshold > 0
        ):
            raise InvalidInput("--cover-threshold must be positive (0.5 in FLAIR-2)")
        if self.altitude_m is not None and not math.isfinite(self.altitude_m):
            raise InvalidInput(f"--altitude {self.altitude_m}: give a number of metres")


@dataclass(frozen=True)
class PredictSettings:
    """Everything `predict` needs; paths are absolute, options checked for range."""

    input: Path | str  # a str for GDAL paths (/vsizip/..., URLs), passed on untouched
    outputs: OutputPaths
    model: str
    card_path: Path | None = None
    overrides: CardOverrides = field(default_factory=CardOverrides)
    bands: tuple[int, ...] | None = None  # R, G, B, NIR, E band numbers; None: the default rule
    elevation: RasterBand | None = None
    extent: Extent | None = None
    mask: Path | str | None = None  # a str for GDAL paths (/vsizip/..., URLs)
    device: str = "auto"
    precision: str = "auto"
    backend: str | None = None  # auto, torch, openvino; None: $FLAIR_BACKEND, else auto
    threads: int | None = None
    tile_size_px: int | None = None
    margin_px: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    output_resolution: str = "model"
    input_max: float | None = None
    stats: Path | None = None
    polygons: Path | None = None
    zones: ZoneTable | None = None  # a class-area table per zone, written with the map
    overwrite: bool = False
    allow_download: bool = False
    sentinel2: Sentinel2Options = field(default_factory=Sentinel2Options)
    # a region's block: exactly this window (col_off, row_off, width, height) of the processing
    # grid, so its tiles are those a run over the whole grid would place there (engine.region)
    window: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidInput(
                f"--batch-size {self.batch_size}: give at least 1 (tiles per forward pass)"
            )
        if self.threads is not None and self.threads < 1:
            raise InvalidInput(
                f"--threads {self.threads}: give at least 1, or leave it out to use all cores"
            )
        tile = self.tile_size_px
        if tile is not None and (tile <= 0 or tile % SIZE_MULTIPLE):
            raise InvalidInput(
                f"--tile-size {tile}: give a positive multiple of {SIZE_MULTIPLE} such as 512 "
                f"or {DEFAULT_TILE_SIZE_PX}, or leave it out for the default"
            )
        margin = self.margin_px
        if margin is not None and margin < 0:
            raise InvalidInput(f"--margin {margin}: give 0 or more pixels")
        if margin is not None and 2 * margin >= (tile or DEFAULT_TILE_SIZE_PX):
            raise InvalidInput(
                f"--margin {margin} leaves no core in {tile or DEFAULT_TILE_SIZE_PX} px tiles: "
                "the margin must be less than half the tile size"
            )
        if self.output_resolution not in OUTPUT_RESOLUTIONS:
            raise InvalidInput(
                f"output resolution {self.output_resolution!r} must be one of {OUTPUT_RESOLUTIONS}"
            )
        high = self.input_max
        if high is not None and not (math.isfinite(high) and high > 0):
            raise InvalidInput(f"--input-max {self.input_max}: give a positive number such as 4095")
        if self.extent and self.mask:
            raise InvalidInput("give either --extent or --mask, not both")
        paths = [p for _, p in self.outputs.rasters()] + [
            p for p in (self.stats, self.polygons) if p
        ]
        if len({Path(p).resolve() for p in paths}) != len(paths):
            raise InvalidInput("two outputs share one file name")
        if Path(self.input).resolve() in {Path(p).resolve() for p in paths}:
            raise InvalidInput("an output would overwrite the input raster")
