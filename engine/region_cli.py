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

from engine.cli_values import add_backend_option, add_common_options, input_path, require_utf8
from engine.figures.zone_table import add_zone_table_options, zone_table_from_args
from engine.predict_cli import card_overrides
from engine.progress import Reporter


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
    many = {"nargs": "+", "action": "extend", "default": []}
    files.add_argument("--rgb", **many, help="RVB product: R, G, B (e.g. 'RVB/**/*.jp2')")
    files.add_argument("--irc", **many, help="IRC product: NIR, R, G; gives the NIR channel")
    files.add_argument("--elevation", **many, help="elevation tiles (band 1) for the E channel")
    files.add_argument("--input", help="one raster or VRT holding every band, instead of --rgb")
    files.add_argument("--mask", help="polygons (any OGR format): map only inside them")
    files.add_argument("--bands", help="band numbers of the mosaic for R,G,B[,NIR[,E]]")
    files.add_argument("--input-max", type=float, help="full-scale value of 16-bit input")
    model = p.add_argument_group("model (as for predict)")
    model.add_argument("--model", help="registry name or checkpoint path (default: the default)")
    model.add_argument("--card", type=Path, help="model card JSON for a checkpoint path")
    for name in ("--channels", "--classes", "--inactive"):
        model.add_argument(name, help=f"{name[2:]} of a checkpoint without a card")
    model.add_argument("--normalization", choices=("flair-inc", "unit"))
    model.add_argument("--download", action="store_true", help="fetch registry weights")
    run = p.add_argument_group("run")
    for name, kind, text in (
        ("--tile-size", int, "tile size in px (default: the model's, else 1280)"),
        ("--margin", int, "tile margin in px (default: the model's, else 128)"),
        ("--batch-size", int, "tiles per forward pass (default 1)"),
        ("--block-size", int, "block size in px, rounded to whole tile cores (default 10240)"),
        ("--workers", int, "local worker processes (default: from the cores and memory)"),
        ("--threads-per-worker", int, "torch threads per worker (default 2)"),
        ("--retries", int, "times a block may be retried after errors or worker deaths (2)"),
    ):
        run.add_argument(name, type=kind, help=text)
    run.add_argument("--scheduler", help="address of a running `dask scheduler` (tcp://HOST:PORT)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    add_backend_option(run)
    run.add_argument("--restart", action="store_true", help="map again, ignoring the manifest")
    out = p.add_argument_group("outputs")
    out.add_argument("--confidence", action="store_true", help="also a confidence mosaic")
    out.add_argument("--polygons", action="store_true", help="also polygons in one GeoPackage")
    add_zone_table_options(out)
    add_common_options(p)
    p.set_defaults(func=run_command, cancel_message=cancel_message)


def settings_from_args(args: argparse.Namespace) -> Any:
    """The frozen `RegionSettings` of the parsed options, every value checked (no file opened
    and no folder made yet)."""
    from engine.io.bands import parse_bands
    from engine.models.registry import load_registry
    from engine.region.outputs import MAP_NAME
    from engine.region.settings import (
        DEFAULT_BLOCK_PX,
        DEFAULT_RETRIES,
        ClusterSettings,
        ProductInputs,
        RegionSettings,
    )

    for text in (*args.rgb, *args.irc, *args.elevation, args.input or ""):
        require_utf8(text, "input")
    return RegionSettings(
        out_dir=args.out_dir.expanduser(),
        inputs=ProductInputs(
            tuple(args.rgb), tuple(args.irc), tuple(args.elevation), args.input or None
        ),
        model=args.model or load_registry().default,
        card_path=args.card,
        overrides=card_overrides(args),
        bands=parse_bands(args.bands) if args.bands else None,
        mask=input_path(args.mask, "--mask") if args.mask else None,
        input_max=args.input_max,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        tile_size_px=args.tile_size,  # None: the model's; 0 or less is refused, not defaulted
        margin_px=args.margin,
        batch_size=1 if args.batch_size is None else args.batch_size,
        block_px=DEFAULT_BLOCK_PX if args.block_size is None else args.block_size,
        confidence=args.confidence,
        polygons=args.polygons,
        zones=zone_table_from_args(args, args.out_dir.expanduser().absolute() / MAP_NAME),
        allow_download=args.download,
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
    from engine.region.run import run_region

    return run_region(settings_from_args(args), reporter)


def cancel_message(args: argparse.Namespace) -> str:
    """What a cancelled `region` leaves in its folder (its finished blocks, kept for the next
    run), for the command line to say after a stop, a hard one included."""
    from engine.region.manifest import cancel_message as kept

    return kept(args.out_dir.expanduser())
