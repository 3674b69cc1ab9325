"""The `predict` subcommand: its options by group, and their one conversion into settings.

`add_parser` registers it on the engine CLI; `settings_from_args` turns the parsed options into
the frozen `PredictSettings` (typed values: an `Extent`, a band tuple, a `RasterBand`, a nested
`Sentinel2Options`), so nothing past this module sees a loose string.

The model, band and run groups are `region`'s too (`add_model_options`, `add_band_options`,
`add_run_options`): one declaration and one help per option, read into one `RunOptions` record
by `run_options_from_args` and checked there, before any input is opened. The output options
come from the output table (`engine.io.output_table`).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli_values import (
    PRECISIONS,
    add_backend_option,
    add_common_options,
    input_path,
    output_path,
    parse_codes,
    require_utf8,
)
from engine.errors import InvalidInput
from engine.figures.zone_table import add_zone_table_options, zone_table_from_args
from engine.io.output_table import OUTPUTS, output
from engine.progress import Reporter
from engine.tiling import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MARGIN_PX,
    DEFAULT_TILE_SIZE_PX,
    SIZE_MULTIPLE,
)

if TYPE_CHECKING:  # settings import the I/O layer; the parser must stay light
    from engine.models.overrides import CardOverrides
    from engine.settings import PredictSettings, RunOptions


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `predict` on the engine CLI's subparsers."""
    p = sub.add_parser(
        "predict",
        help="map the land cover of an orthophoto",
        description="Map the land cover of an orthophoto with a FLAIR model.",
    )
    p.add_argument(
        "input", help="orthophoto: any raster GDAL reads (also /vsizip/..., /vsicurl/..., URLs)"
    )
    p.add_argument("output", type=Path, help=output("output").help)
    for add_group in (
        add_model_options,
        _input_options,
        _run_options,
        _output_options,
        _sentinel2_options,
    ):
        add_group(p)
    add_common_options(p)
    p.set_defaults(func=run)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The model group, as `predict` and `region` take it: which network, its card when given
    by path, and whether it may be downloaded."""
    m = p.add_argument_group("model")
    m.add_argument(
        "--model",
        default=None,
        help="registry name (see `models`), checkpoint path, or auto (the best model the "
        "raster's bands can feed whose weights are here, said in the log); default: the "
        "registry's default",
    )
    m.add_argument("--card", type=Path, help="model card JSON for a checkpoint given by path")
    m.add_argument("--channels", help="checkpoint channels, e.g. R,G,B,NIR,E (without a card)")
    m.add_argument(
        "--classes", help="FLAIR code of each logit, e.g. 1-19 or 1-12,19 (without a card)"
    )
    m.add_argument("--inactive", help="codes that may never win, e.g. 15,16,17,19")
    m.add_argument(
        "--normalization",
        choices=("flair-inc", "unit"),
        help="flair-inc: mean/std on 0-255 values; unit: divide by 255 (FLAIR-1, U-T&T)",
    )
    m.add_argument(
        "--download",
        action="store_true",
        help="download registry weights from the Hugging Face hub if not cached",
    )


def add_band_options(group: argparse._ActionsContainer) -> None:
    """`--bands` and `--input-max` (which bands of the raster or mosaic feed the model, and
    their full scale), in the caller's input group."""
    group.add_argument(
        "--bands",
        help="band numbers for R,G,B[,NIR[,E]], or named: NIR=1,R=2,G=3 for an IRC "
        "orthophoto (default: band descriptions, colour interpretation, then 1,2,3,4,5)",
    )
    group.add_argument(
        "--input-max",
        type=float,
        help="value that means full scale for 16-bit input "
        "(default: 255, 4095 or 65535 from the data)",
    )


def add_run_options(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The run group, as `predict` and `region` take it: device, precision and tiling;
    returned so each command adds its own (threads, cluster)."""
    r = p.add_argument_group("run")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    r.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16/fp16 on CUDA, fp32 on CPU",
    )
    add_backend_option(r)
    r.add_argument(
        "--tile-size",
        type=int,
        help=f"tile size in px, a positive multiple of {SIZE_MULTIPLE} (default: the model "
        f"card's, else {DEFAULT_TILE_SIZE_PX})",
    )
    r.add_argument(
        "--margin",
        type=int,
        help="overlap margin in px, 0 or more and under half the tile (default: the model "
        f"card's, else {DEFAULT_MARGIN_PX})",
    )
    r.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"tiles per forward pass, 1 or more (default {DEFAULT_BATCH_SIZE})",
    )
    return r


def _input_options(p: argparse.ArgumentParser) -> None:
    """Which bands feed the model, and which part of the raster is mapped."""
    i = p.add_argument_group("input")
    add_band_options(i)
    i.add_argument(
        "--elevation", help="elevation raster for the E channel, PATH[:BAND], aligned on the fly"
    )
    i.add_argument("--extent", help="xmin,ymin,xmax,ymax[,CRS] (default CRS: the input's)")
    i.add_argument("--mask", help="polygons (any OGR format, any CRS): map only inside them")


def _run_options(p: argparse.ArgumentParser) -> None:
    """Device, precision, tiling, and predict's threads."""
    r = add_run_options(p)
    r.add_argument(
        "--threads", type=int, help="CPU threads for torch, 1 or more (default: all cores)"
    )


def _output_options(p: argparse.ArgumentParser) -> None:
    """What is written besides the map."""
    o = p.add_argument_group("outputs")
    o.add_argument(
        "--output-resolution",
        choices=("model", "input"),
        default="model",
        help="model: write on the 0.2 m processing grid; input: on the input's grid",
    )
    for entry in OUTPUTS:  # the zones option has its companions, added below
        if entry.option and entry.key != "zones":
            o.add_argument(entry.option, type=Path, help=entry.help)
    add_zone_table_options(o)
    o.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def _sentinel2_options(p: argparse.ArgumentParser) -> None:
    """The Sentinel-2 series and the aerial acquisition, for U-T&T models."""
    s = p.add_argument_group("U-T&T (Sentinel-2)")
    s.add_argument(
        "--sentinel2",
        help="stac[:URL[#collection]], planetary-computer, catalog:PATH or flair:PATH",
    )
    s.add_argument(
        "--year", type=int, help="year of the Sentinel-2 series (the aerial acquisition's)"
    )
    s.add_argument(
        "--strict", action="store_true", help="fail on tiles without a usable Sentinel-2 date"
    )
    s.add_argument(
        "--acquisition-date",
        help="aerial acquisition date YYYY-MM-DD (default: the raster's date tag)",
    )
    s.add_argument("--acquisition-time", help="aerial acquisition time HHhMM (default 12h00)")
    s.add_argument("--camera", help="aerial camera name (default UCE-M3, UltraCam Eagle)")
    s.add_argument(
        "--altitude", type=float, help="ground altitude of the area in metres (default 0)"
    )
    s.add_argument(
        "--no-monthly-average",
        dest="monthly_average",
        action="store_false",
        default=None,
        help="keep every usable date instead of monthly means",
    )
    s.add_argument(
        "--cover-threshold",
        type=float,
        help="drop a date when its cloudy + snowy fraction reaches this (default 0.5)",
    )


def card_overrides(args: argparse.Namespace) -> CardOverrides:
    """The card fields of `--channels`, `--classes`, `--inactive` and `--normalization`."""
    from engine.models.overrides import CardOverrides

    return CardOverrides(
        channels=tuple(c.strip().upper() for c in args.channels.split(","))
        if args.channels
        else None,
        logit_codes=parse_codes(args.classes) if args.classes else None,
        inactive_codes=parse_codes(args.inactive) if args.inactive else None,
        normalization=args.normalization,
    )


def run_options_from_args(args: argparse.Namespace) -> RunOptions:
    """The `RunOptions` record of the options `add_model_options`, `add_band_options` and
    `add_run_options` declared, checked at once (no raster opened, no model loaded): `predict`
    and `region` both read them here. The default model is decided here, once."""
    from engine.io.bands import parse_bands
    from engine.models.registry import load_registry
    from engine.settings import RunOptions

    return RunOptions(
        model=args.model or load_registry().default,
        card_path=args.card,
        overrides=card_overrides(args),
        bands=parse_bands(args.bands) if args.bands else None,
        input_max=args.input_max,
        device=args.device,
        precision=args.precision,
        backend=args.backend,  # None: $FLAIR_BACKEND, else auto (engine.runtime.choice)
        threads=getattr(args, "threads", None),  # region: per worker, set by the cluster
        tile_size_px=args.tile_size,
        margin_px=args.margin,
        batch_size=args.batch_size,
        allow_download=args.download,
    )


def settings_from_args(args: argparse.Namespace) -> PredictSettings:
    """The run's `PredictSettings` from the parsed options: every loose form parsed here once
    (cheap: no raster is opened and no model loaded, so a typo fails at once)."""
    from engine.area import parse_extent
    from engine.io.bands import parse_elevation
    from engine.io.destination import OutputPaths
    from engine.outputs import other_outputs
    from engine.settings import PredictSettings, Sentinel2Options

    if args.elevation:
        require_utf8(args.elevation, "--elevation")
    sentinel2 = Sentinel2Options(
        source=args.sentinel2,
        year=args.year,
        strict=args.strict,
        acquisition_date=_date(args.acquisition_date),
        acquisition_time=args.acquisition_time,
        camera=args.camera,
        altitude_m=args.altitude,
        monthly_average=args.monthly_average,
        cover_threshold=args.cover_threshold,
    )
    output = output_path(args.output, "output")
    return PredictSettings.of(
        run_options_from_args(args),
        input=input_path(args.input, "input raster"),
        outputs=OutputPaths(
            output,
            output_path(args.confidence, "--confidence"),
            output_path(args.probabilities, "--probabilities"),
        ),
        elevation=parse_elevation(args.elevation) if args.elevation else None,
        extent=parse_extent(args.extent) if args.extent else None,
        mask=input_path(args.mask, "--mask") if args.mask else None,
        output_resolution=args.output_resolution,
        stats=output_path(args.stats, "--stats"),
        polygons=output_path(args.polygons, "--polygons"),
        zones=zone_table_from_args(args, output),
        other_outputs={
            o.key: path
            for o in other_outputs()
            if (path := output_path(getattr(args, o.option[2:].replace("-", "_")), o.option))
        },
        overwrite=args.overwrite,
        sentinel2=sentinel2,
    )


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"--acquisition-date {text!r} is not YYYY-MM-DD") from None


def run(args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    """`predict`: the settings, then the pipeline; returns the `done` event's contents."""
    from dataclasses import replace

    from engine.models.auto import prepare_model

    settings = settings_from_args(args)
    if settings.device not in ("auto", "cpu"):  # a GPU asked for: checked before the weights
        from engine.device import choose_device

        choose_device(settings.device, settings.precision)
    model = prepare_model(  # `auto` and missing weights settled before torch is imported
        settings.model,
        settings.input,
        settings.bands,
        settings.elevation,
        bool(settings.sentinel2.source),
        settings.allow_download,
        reporter.log,
    )
    from engine.pipeline import run_predict

    result = run_predict(replace(settings, model=model), reporter)
    return {"outputs": result.outputs, "stats": result.stats, "run": result.run}
