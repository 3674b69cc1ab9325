"""The `region` subcommand: map a whole region from many files on a Dask cluster, resumably.

    flair-landcover region OUT_DIR --rgb 'RVB/**/*.jp2' [--irc 'IRC/**/*.jp2'] \\
        [--elevation 'DSM/*.tif'] --model NAME [--mask area.gpkg] \\
        [--workers N --threads-per-worker T | --scheduler tcp://HOST:8786]
    flair-landcover region OUT_DIR --input mosaic.vrt --model NAME
    flair-landcover region OUT_DIR ...        # the same command again resumes

Its options are turned into a frozen `RegionSettings` here, once; `engine.region.run` does the
rest (see docs/region.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli_values import add_common_options, input_path, require_utf8
from engine.figures.zone_table import add_zone_table_options, zone_table_from_args
from engine.io.output_table import region_outputs
from engine.predict_cli import (
    add_band_options,
    add_model_options,
    add_run_options,
    run_options_from_args,
)
from engine.progress import Reporter
from engine.region.products import PRODUCTS, base_product


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `region` on the engine CLI's subparsers."""
    p = sub.add_parser(
        "region",
        help="map a whole region (many files, many machines, resumable)",
        description="Map the land cover of a region from BD ORTHO-style deliveries (RVB, IRC "
        "and elevation tiles) or one large raster, block by block on a Dask cluster. Rerun the "
        "same command to resume.",
    )
    p.add_argument("out_dir", type=Path, help="output folder (maps, statistics, manifest)")
    files = p.add_argument_group("inputs (globs, folders or files; several allowed)")
    for product in PRODUCTS:
        files.add_argument(
            product.option, nargs="+", action="extend", default=[], help=product.help
        )
    base = base_product().option
    files.add_argument("--input", help=f"one raster or VRT holding every band, instead of {base}")
    files.add_argument("--mask", help="polygons (any OGR format): map only inside them")
    add_band_options(files)
    add_model_options(p)
    run = add_run_options(p)
    for name, kind, text in (
        ("--block-size", int, "block size in px, rounded to whole tile cores (default 10240)"),
        ("--workers", int, "local worker processes (default: from the cores and memory)"),
        ("--threads-per-worker", int, "torch threads per worker (default 2)"),
        ("--retries", int, "times a block may be retried after errors or worker deaths (2)"),
    ):
        run.add_argument(name, type=kind, help=text)
    run.add_argument("--scheduler", help="address of a running `dask scheduler` (tcp://HOST:PORT)")
    run.add_argument("--restart", action="store_true", help="map again, ignoring the manifest")
    out = p.add_argument_group("outputs")
    for entry in region_outputs():
        out.add_argument(entry.option, action="store_true", help=entry.region_help)
    add_zone_table_options(out)
    add_common_options(p)
    p.set_defaults(func=run_command, cancel_message=cancel_message)


def settings_from_args(args: argparse.Namespace) -> Any:
    """The frozen `RegionSettings` of the parsed options, every value checked (no file opened
    and no folder made yet): the model, bands, runtime and tiling by predict's own code."""
    from engine.region.outputs import MAP_NAME
    from engine.region.settings import (
        DEFAULT_BLOCK_PX,
        DEFAULT_RETRIES,
        ClusterSettings,
        ProductInputs,
        RegionSettings,
    )

    given = {p.key: tuple(getattr(args, p.key)) for p in PRODUCTS}
    for text in (*(t for texts in given.values() for t in texts), args.input or ""):
        require_utf8(text, "input")
    return RegionSettings(
        out_dir=args.out_dir.expanduser(),
        inputs=ProductInputs({k: v for k, v in given.items() if v}, args.input or None),
        run=run_options_from_args(args),
        mask=input_path(args.mask, "--mask") if args.mask else None,
        block_px=DEFAULT_BLOCK_PX if args.block_size is None else args.block_size,
        confidence=args.confidence,
        polygons=args.polygons,
        zones=zone_table_from_args(args, args.out_dir.expanduser().absolute() / MAP_NAME),
        restart=args.restart,
        cluster=ClusterSettings(
            args.workers,
            args.threads_per_worker,
            args.scheduler,
            DEFAULT_RETRIES if args.retries is None else args.retries,
        ),
    )


def run_command(args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    """`region`: the settings, then the region run; returns the `done` event's contents."""
    from engine.region.auto import settle_region_model

    settings = settle_region_model(settings_from_args(args), reporter.log)  # before torch
    from engine.region.run import run_region

    return run_region(settings, reporter)


def cancel_message(args: argparse.Namespace) -> str:
    """What a cancelled `region` leaves in its folder (its finished blocks, kept for the next
    run), for the command line to say after a stop, a hard one included."""
    from engine.region.manifest import cancel_message as kept

    return kept(args.out_dir.expanduser())
