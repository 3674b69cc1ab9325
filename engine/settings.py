"""Run settings of `predict`: one frozen record, validated once at the boundary."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.area import Extent
from engine.cli_values import BACKENDS, PRECISIONS
from engine.errors import InvalidInput
from engine.figures.zone_table import ZoneTable
from engine.grid import Window
from engine.io.bands import RasterBand
from engine.io.destination import OutputPaths
from engine.models.overrides import CardOverrides
from engine.sentinel2.settings import Sentinel2Options
from engine.tiling import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MARGIN_PX,
    DEFAULT_TILE_SIZE_PX,
    SIZE_MULTIPLE,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MARGIN_PX",
    "DEFAULT_TILE_SIZE_PX",
    "PredictSettings",
    "RunOptions",
    "Sentinel2Options",
]

OUTPUT_RESOLUTIONS = ("model", "input")


@dataclass(frozen=True)
class RunOptions:
    """The model, its bands, the runtime, precision and tiling of a run: one record that
    `predict` and `region` parse with the same options (`engine.predict_cli.add_run_options`)
    and check here, at parse time, before any input is opened or any folder made.

    `None` means "decided later, from the model card" (tile size, margin) or "all cores"
    (threads); 0 or a negative number is refused, never read as "the default".
    """

    model: str
    card_path: Path | None = None
    overrides: CardOverrides = field(default_factory=CardOverrides)
    bands: tuple[int, ...] | None = None  # R, G, B, NIR, E band numbers; None: the default rule
    input_max: float | None = None
    device: str = "auto"
    precision: str = "auto"
    # the runtime the network runs in: auto, torch, openvino (engine.runtime); None: the
    # environment's default ($FLAIR_BACKEND), else auto
    backend: str | None = None
    threads: int | None = None
    tile_size_px: int | None = None  # None: the model card's, else DEFAULT_TILE_SIZE_PX
    margin_px: int | None = None  # None: the model card's, else DEFAULT_MARGIN_PX
    batch_size: int = DEFAULT_BATCH_SIZE
    allow_download: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidInput(
                f"--batch-size {self.batch_size}: give at least 1 (tiles per forward pass)",
                option="--batch-size",
                value=self.batch_size,
                expected="1 or more tiles per forward pass",
            )
        if self.threads is not None and self.threads < 1:
            raise InvalidInput(
                f"--threads {self.threads}: give at least 1, or leave it out to use all cores",
                option="--threads",
                value=self.threads,
                expected="1 or more threads",
            )
        tile = self.tile_size_px
        if tile is not None and (tile <= 0 or tile % SIZE_MULTIPLE):
            raise InvalidInput(
                f"--tile-size {tile}: give a positive multiple of {SIZE_MULTIPLE} such as 512 "
                f"or {DEFAULT_TILE_SIZE_PX}, or leave it out for the default",
                option="--tile-size",
                value=tile,
                expected=f"a positive multiple of {SIZE_MULTIPLE} such as 512",
            )
        margin = self.margin_px
        if margin is not None and margin < 0:
            raise InvalidInput(
                f"--margin {margin}: give 0 or more pixels",
                option="--margin",
                value=margin,
                expected="0 or more pixels",
            )
        if margin is not None and 2 * margin >= (tile or DEFAULT_TILE_SIZE_PX):
            raise InvalidInput(
                f"--margin {margin} leaves no core in {tile or DEFAULT_TILE_SIZE_PX} px tiles: "
                "the margin must be less than half the tile size",
                option="--margin",
                value=margin,
                expected=f"less than half the tile size ({tile or DEFAULT_TILE_SIZE_PX} px)",
            )
        high = self.input_max
        if high is not None and not (math.isfinite(high) and high > 0):
            raise InvalidInput(
                f"--input-max {self.input_max}: give a positive number such as 4095",
                option="--input-max",
                value=high,
            )
        for option, value, allowed in (
            ("--precision", self.precision, PRECISIONS),
            ("--backend", self.backend, BACKENDS),
        ):
            if value not in allowed and not (option == "--backend" and value is None):
                raise InvalidInput(
                    f"{option} {value!r}: give one of {', '.join(allowed)}",
                    option=option,
                    value=value,
                )

    def as_fields(self) -> dict[str, Any]:
        """The record's values by field name, as `PredictSettings` takes them."""
        return {f.name: getattr(self, f.name) for f in fields(RunOptions)}


@dataclass(frozen=True)
class PredictSettings:
    """Everything `predict` needs; paths are absolute, options checked for range.

    Its model, bands, runtime and tiling are a `RunOptions` record's (`of` builds the settings
    from one, `run_options` gives it back), checked by that record's own rules."""

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
    # the files of the output table's other entries, by key (`engine.outputs`: an output
    # added to the table is asked for here, without a field of its own)
    other_outputs: Mapping[str, Path] = field(default_factory=dict)
    overwrite: bool = False
    allow_download: bool = False
    sentinel2: Sentinel2Options = field(default_factory=Sentinel2Options)
    # a region's block: exactly this window of the processing grid, so its tiles are those a
    # run over the whole grid would place there (engine.region)
    window: Window | None = None

    @classmethod
    def of(cls, run: RunOptions, **rest: Any) -> PredictSettings:
        """The settings of a run with `run`'s model, bands, runtime and tiling, and `rest`
        (input, outputs, area, ...)."""
        return cls(**run.as_fields(), **rest)

    @property
    def run_options(self) -> RunOptions:
        """The model, bands, runtime and tiling of these settings, as their own record."""
        return RunOptions(**{f.name: getattr(self, f.name) for f in fields(RunOptions)})

    def __post_init__(self) -> None:
        self.run_options  # noqa: B018 -- the record checks its own values
        if self.output_resolution not in OUTPUT_RESOLUTIONS:
            raise InvalidInput(
                f"output resolution {self.output_resolution!r} must be one of {OUTPUT_RESOLUTIONS}",
                option="--output-resolution",
            )
        if self.extent and self.mask:
            raise InvalidInput("give either --extent or --mask, not both", option="--mask")
        paths = [p for _, p in self.outputs.rasters()] + [
            p for p in (self.stats, self.polygons, *self.other_outputs.values()) if p
        ]
        if len({Path(p).resolve() for p in paths}) != len(paths):
            raise InvalidInput("two outputs share one file name")
        if Path(self.input).resolve() in {Path(p).resolve() for p in paths}:
            raise InvalidInput("an output would overwrite the input raster")
