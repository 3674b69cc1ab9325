"""Settings of a region run: one frozen record, validated once at the boundary.

Every value is checked here, before any file is opened or folder made: the model, bands, runtime
and tiling by their own record (`engine.settings.RunOptions`, the one `predict` checks), the
products, the block size, the cluster's counts and the scheduler's address.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidInput
from engine.figures.zone_table import ZoneTable
from engine.region.products import (
    DEFAULT_PATTERN,
    PRODUCTS,
    base_product,
    image_products,
)

if TYPE_CHECKING:
    from engine.settings import PredictSettings, RunOptions

# About 10,000 px: ten cores of the default 1280/128 tiling (0.2 m: 2 km x 2 km, 4.2 km2)
DEFAULT_BLOCK_PX = 10_240
DEFAULT_RETRIES = 2
# what `distributed` takes for a scheduler: [tcp|tls|ws|wss|ucx://]HOST:PORT, HOST a name, an
# IPv4 address or a bracketed IPv6 one
_SCHEDULER = re.compile(
    r"^(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9A-Fa-f:.]+\]|[\w.-]+):(?P<port>\d{1,5})$"
)


@dataclass(frozen=True)
class ProductInputs:
    """Where the region's rasters are: globs, folders or files per product (by the key of its
    entry in `engine.region.products`), or one raster holding every band."""

    files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    single: str | None = None  # one raster or VRT holding every band (`--input`)

    def __post_init__(self) -> None:
        unknown = set(self.files) - {p.key for p in PRODUCTS}
        if unknown:
            raise InvalidInput(f"unknown region product(s): {', '.join(sorted(unknown))}")
        images = image_products()
        if self.single and any(self.of(p.key) for p in images):
            options = "/".join(p.option for p in images)
            raise InvalidInput(f"give either --input or {options}, not both", option="--input")
        base = base_product()
        if not self.single and not self.of(base.key):
            joined = " and ".join(p.option for p in images if p is not base)
            raise InvalidInput(
                f"say what to map: {base.option} '{base.name}/{DEFAULT_PATTERN}' "
                f"(and {joined}), or --input",
                option=base.option,
            )

    def of(self, key: str) -> tuple[str, ...]:
        """The globs, folders or files given for product `key` (none: empty)."""
        return tuple(self.files.get(key, ()))


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
                "started by `dask worker` (give them --nthreads 1)",
                option="--workers",
            )
        for name, value in (
            ("--workers", self.workers),
            ("--threads-per-worker", self.threads_per_worker),
        ):
            if value is not None and value < 1:
                raise InvalidInput(f"{name} {value}: give 1 or more", option=name, value=value)
        if self.retries < 0:
            raise InvalidInput(
                f"--retries {self.retries}: give 0 or more", option="--retries", value=self.retries
            )
        if self.scheduler is not None:
            found = _SCHEDULER.match(self.scheduler)
            if not found or not 0 < int(found["port"]) < 65536:
                raise InvalidInput(
                    f"--scheduler {self.scheduler!r} is not a Dask scheduler address: give "
                    "tcp://HOST:PORT, as `dask scheduler` prints it (e.g. tcp://10.0.0.5:8786)",
                    option="--scheduler",
                )


@dataclass(frozen=True)
class RegionSettings:
    """Everything a region run needs; the part that shapes the outputs is `result_key`.

    `run` is the model, bands, runtime and tiling every block shares, the very record `predict`
    parses (`engine.predict_cli.run_options_from_args`), checked there; its threads are set
    per worker by the cluster."""

    out_dir: Path
    inputs: ProductInputs
    run: RunOptions
    mask: Path | str | None = None
    block_px: int = DEFAULT_BLOCK_PX
    confidence: bool = False
    polygons: bool = False
    zones: ZoneTable | None = None  # class areas per zone of the finished map, each run
    restart: bool = False
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

    def __post_init__(self) -> None:
        if self.block_px < 1:
            raise InvalidInput(
                f"--block-size {self.block_px}: give a positive number of pixels (it is rounded "
                f"to whole tile cores), or leave it out for {DEFAULT_BLOCK_PX}",
                option="--block-size",
                value=self.block_px,
            )

    def block_settings(self, mosaic: Path | str | None = None) -> PredictSettings:
        """The `predict` settings every block shares, on `mosaic` (default: where the run
        writes it); its window, outputs and threads are set per block and per cluster."""
        from engine.io.destination import OutputPaths
        from engine.settings import PredictSettings

        out_dir = Path(self.out_dir).absolute()
        return PredictSettings.of(
            self.run,
            input=mosaic or out_dir / "inputs" / "mosaic.vrt",
            outputs=OutputPaths(out_dir / "blocks" / "block.tif"),
            mask=self.mask,
            overwrite=True,  # a block's files are the region's own; a retry replaces a torn one
        )

    def result_key(
        self,
        input_files: list[dict[str, Any]],
        weights_sha256: str,
        card_sha256: str | None,
        registry_name: str | None,
        mask_content: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """What decides the pixels of every output (recorded in the manifest, and hashed): the
        inputs (path, size and time), the model by content (its weights' and card file's
        SHA-256, and its registry name), bands, the mask by content (`manifest.mask_content`:
        its files' SHA-256, a GDAL path by its string) and tiling; not where the model or mask
        file lies, nor where or how fast blocks run."""
        run = self.run
        o = run.overrides
        return {
            "inputs": input_files,
            "model": registry_name,
            "weights_sha256": weights_sha256,
            "card_sha256": card_sha256,
            "overrides": [o.channels, o.logit_codes, o.inactive_codes, o.normalization],
            "bands": run.bands,
            "mask": mask_content if self.mask else None,
            "input_max": run.input_max,
            "precision": run.precision,
            "tile_size_px": run.tile_size_px,
            "margin_px": run.margin_px,
            "block_px": self.block_px,
            "confidence": self.confidence,
            "polygons": self.polygons,
        }
