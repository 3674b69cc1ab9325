"""`flair-landcover` (also `python -m engine`): the engine's command line.

Errors print as one line (what is wrong and how to fix it) with a non-zero exit code;
`--debug` adds the traceback. `--progress json` speaks the JSON-lines protocol of
engine.progress to the QGIS plugin. SIGINT and SIGTERM stop the run cleanly: no output is left
at the destination and the exit code is 130 or 143.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from engine import __version__
from engine.errors import Cancelled, EngineError, InvalidInput
from engine.failures import explain_unexpected
from engine.interrupt import run_interruptible
from engine.memory import release_large_buffers
from engine.progress import Reporter, make_reporter

EXIT_ERROR = 1


def _codes(text: str) -> tuple[int, ...]:
    """`1-12,19` -> (1, ..., 12, 19)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return tuple(out)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        choices=("bar", "json", "none"),
        default=None,
        help="progress display: bar on a terminal (default there), json lines for programs, none",
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of errors")


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="map the land cover of an orthophoto",
        description="Map the land cover of an orthophoto with a FLAIR model.",
    )
    p.add_argument(
        "input", help="orthophoto: any raster GDAL reads (also /vsizip/..., /vsicurl/..., URLs)"
    )
    p.add_argument(
        "output", type=Path, help="land-cover GeoTIFF to write (FLAIR codes 1-19, 0 = no data)"
    )
    m = p.add_argument_group("model")
    m.add_argument(
        "--model",
        default=None,
        help="registry name (see `models`) or checkpoint path; default: the registry's default",
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
    i = p.add_argument_group("input")
    i.add_argument(
        "--bands",
        help="band numbers for R,G,B[,NIR[,E]] (default: from colour "
        "interpretation, then 1,2,3,4,5)",
    )
    i.add_argument(
        "--elevation", help="elevation raster for the E channel, PATH[:BAND], aligned on the fly"
    )
    i.add_argument("--extent", help="xmin,ymin,xmax,ymax[,CRS] (default CRS: the input's)")
    i.add_argument("--mask", help="polygons (any OGR format, any CRS): map only inside them")
    i.add_argument(
        "--input-max",
        type=float,
        help="value that means full scale for 16-bit input "
        "(default: 255, 4095 or 65535 from the data)",
    )
    r = p.add_argument_group("run")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    r.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="auto: bf16/fp16 on CUDA, fp32 on CPU",
    )
    r.add_argument(
        "--threads", type=int, help="CPU threads for torch, 1 or more (default: all cores)"
    )
    r.add_argument(
        "--tile-size",
        type=int,
        help="tile size in px, a positive multiple of 32 (default 1280; U-T&T 512)",
    )
    r.add_argument(
        "--margin",
        type=int,
        help="overlap margin in px, 0 or more and under half the tile (default 128)",
    )
    r.add_argument(
        "--batch-size", type=int, default=1, help="tiles per forward pass, 1 or more (default 1)"
    )
    o = p.add_argument_group("outputs")
    o.add_argument(
        "--output-resolution",
        choices=("model", "input"),
        default="model",
        help="model: write on the 0.2 m processing grid; input: on the input's grid",
    )
    o.add_argument("--confidence", type=Path, help="GeoTIFF of the top class probability x 255")
    o.add_argument(
        "--probabilities", type=Path, help="GeoTIFF with one band per class, probability x 255"
    )
    o.add_argument("--stats", type=Path, help="class areas as .json or .csv")
    o.add_argument("--polygons", type=Path, help="polygons of the map (.gpkg, .geojson, .fgb)")
    o.add_argument("--overwrite", action="store_true", help="replace existing outputs")
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
    _common(p)
    p.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    from engine.io.destination import OutputPaths
    from engine.models.overrides import CardOverrides
    from engine.models.registry import load_registry
    from engine.pipeline import run_predict
    from engine.settings import PredictSettings

    source = _input_path(args.input, "input raster")
    output = _output_path(args.output, "output")
    confidence = _output_path(args.confidence, "--confidence")
    probabilities = _output_path(args.probabilities, "--probabilities")
    stats = _output_path(args.stats, "--stats")
    polygons = _output_path(args.polygons, "--polygons")
    mask = _input_path(args.mask, "--mask") if args.mask else None
    if args.elevation:
        _require_utf8(args.elevation, "--elevation")
    overrides = CardOverrides(
        channels=tuple(c.strip().upper() for c in args.channels.split(","))
        if args.channels
        else None,
        logit_codes=_codes(args.classes) if args.classes else None,
        inactive_codes=_codes(args.inactive) if args.inactive else None,
        normalization=args.normalization,
    )
    settings = PredictSettings(
        input=source,
        outputs=OutputPaths(output, confidence, probabilities),
        model=args.model or load_registry().default,
        card_path=args.card,
        overrides=overrides,
        bands=args.bands,
        elevation=args.elevation,
        extent=args.extent,
        mask=mask,
        device=args.device,
        precision=args.precision,
        threads=args.threads,
        tile_size_px=args.tile_size,
        margin_px=args.margin,
        batch_size=args.batch_size,
        output_resolution=args.output_resolution,
        input_max=args.input_max,
        stats=stats,
        polygons=polygons,
        overwrite=args.overwrite,
        allow_download=args.download,
        sentinel2=args.sentinel2,
        year=args.year,
        strict=args.strict,
        acquisition_date=args.acquisition_date,
        acquisition_time=args.acquisition_time,
        camera=args.camera,
        altitude_m=args.altitude,
        monthly_average=args.monthly_average,
        cover_threshold=args.cover_threshold,
    )
    result = run_predict(settings, reporter)
    return {"outputs": result.outputs, "stats": result.stats}


def _require_utf8(text: str, what: str) -> None:
    """GDAL takes UTF-8 names only; a name whose bytes are not UTF-8 reaches Python with
    surrogate escapes (os.fsdecode) and is refused here with a message, not a codec error."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        import os

        shown = os.fsencode(text).decode("utf-8", "backslashreplace")
        raise InvalidInput(
            f"{what} {shown}: the name is not valid UTF-8, which GDAL needs; rename the file "
            "(and its folders) with UTF-8 characters"
        ) from None


def _input_path(text: str, what: str) -> Path | str:
    """A raster or vector input: GDAL paths (/vsizip//abs/x.zip/a.tif, URLs) untouched,
    local ones made absolute."""
    from engine.failures import user_path

    _require_utf8(text, what)
    path = user_path(text)
    return path if isinstance(path, str) else path.absolute()


def _output_path(path: Path | None, what: str) -> Path | None:
    if path is None:
        return None
    _require_utf8(str(path), what)
    return path.expanduser()


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list known models, or download one",
        description="List the registry's models (inputs, classes, cached state).",
    )
    p.add_argument("action", nargs="?", choices=("list", "download"), default="list")
    p.add_argument("name", nargs="?", help="model to download")
    p.add_argument("--json", action="store_true", help="print JSON")
    _common(p)
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    from engine.errors import InvalidInput
    from engine.models.download import download_weights, local_weights
    from engine.models.registry import load_registry

    registry = load_registry()
    if args.action == "download":
        if not args.name:
            raise InvalidInput(f"say which model to download: one of {', '.join(registry.names)}")
        card = registry.get(args.name)
        path = local_weights(card) or download_weights(card, reporter.log)
        reporter.log(f"{card.name}: {path}")
        return {"outputs": {"weights": str(path)}, "stats": {}}
    rows = []
    for card in registry.cards:
        cached = local_weights(card)
        row = card.to_dict()
        row.update(
            active_codes=list(card.active_codes),
            cached=cached is not None,
            path=str(cached) if cached else None,
            default=card.name == registry.default,
        )
        rows.append(row)
    if args.json:
        print(json.dumps({"default": registry.default, "models": rows}, indent=1))
    else:
        for row in rows:
            mark = "*" if row["default"] else " "
            state = "cached" if row["cached"] else "not downloaded"
            print(
                f"{mark} {row['name']:<22} {','.join(row['channels']):<13} "
                f"{len(row['active_codes']):>2} classes  {state:<15} {row['source']['repo_id']}"
            )
        print("* default model. Download with: flair-landcover models download NAME")
    return {"outputs": {}, "stats": {}, "quiet": True}


class UsageError(Exception):
    """A command-line syntax error, raised by `CommandLineParser.error` (any subparser) and
    reported once by the top-level parser."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


_NEGATIVE_LIST = re.compile(r"^-\.?\d[^,]*,")  # -180,-90,180,90: a value, not an option


def _attach_negative_values(argv: list[str]) -> list[str]:
    """`--extent -180,-90,180,90` -> `--extent=-180,-90,180,90` (argparse takes a value that
    starts with a minus for an option unless it is a single number)."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE_LIST.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _wants_json(argv: list[str]) -> bool:
    """Whether `--progress json` (`--progress=json`, `--prog json`) is among the arguments."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        given = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
        if len(name) > 5 and "--progress".startswith(name) and given == "json":
            return True
    return False


class CommandLineParser(argparse.ArgumentParser):
    """argparse, plus: a syntax error is also a JSON error event on stdout when `--progress
    json` is asked for (the plugin reads only stdout), still exit code 2; and a value that
    starts with a minus (`--extent -180,-90,180,90`) is read as the option's value."""

    def __init__(self, *args: Any, root: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._root = root

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = _attach_negative_values(list(sys.argv[1:] if args is None else args))
        if not self._root:
            return super().parse_known_args(argv, namespace)
        try:
            return super().parse_known_args(argv, namespace)
        except UsageError as exc:
            self._usage_exit(exc, argv)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        argv = _attach_negative_values(list(sys.argv[1:] if args is None else args))
        try:
            return super().parse_args(argv, namespace)
        except UsageError as exc:  # unrecognised arguments, found after parse_known_args
            self._usage_exit(exc, argv)

    def _usage_exit(self, exc: UsageError, argv: list[str]) -> NoReturn:
        prog = exc.parser.prog
        if _wants_json(argv):
            event = {
                "event": "error",
                "type": "UsageError",
                "message": f"{exc.message} (see {prog} --help)",
            }
            print(json.dumps(event), flush=True)
        exc.parser.print_usage(sys.stderr)
        self.exit(2, f"{prog}: error: {exc.message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        root=True,
        prog="flair-landcover",
        description="FLAIR land-cover segmentation of aerial orthophotos (IGN FLAIR models).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_predict(sub)
    _add_models(sub)
    try:
        from engine.evaluation.cli import add_parser as add_evaluate
    except ImportError:
        add_evaluate = None
    if add_evaluate is not None:
        add_evaluate(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    kind = args.progress or ("bar" if sys.stderr.isatty() else "none")
    reporter = make_reporter(kind)
    logging.basicConfig(
        level=logging.INFO if kind != "json" else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("rasterio", "fiona", "pyogrio"):  # GDAL's own messages: --debug shows them
        logging.getLogger(noisy).setLevel(logging.NOTSET if args.debug else logging.CRITICAL)
    release_large_buffers()
    func: Callable[[argparse.Namespace, Reporter], dict[str, Any]] = args.func
    received: dict[int, int] = {}

    def hard_stop(code: int) -> None:
        reporter.error(Cancelled("cancelled; no output was left behind"))
        if kind != "json":
            print("flair-landcover: cancelled; no output was left behind", file=sys.stderr)

    try:
        result = run_interruptible(lambda: func(args, reporter), reporter, received, hard_stop)
    except (Cancelled, KeyboardInterrupt):
        reporter.error(Cancelled("cancelled; no output was left behind"))
        if kind != "json":
            print("flair-landcover: cancelled; no output was left behind", file=sys.stderr)
        return next(iter(received.values()), 130)
    except EngineError as exc:
        reporter.error(exc)
        if kind != "json":
            print(f"flair-landcover: error: {exc}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_ERROR
    except Exception as exc:
        known = explain_unexpected(exc)  # an I/O failure that escaped: it names its cause
        if known is None:  # an engine bug: one line, the traceback with --debug
            message = f"unexpected {type(exc).__name__}: {exc} (rerun with --debug and report it)"
            failure: Exception = RuntimeError(message)
        else:
            message, failure = str(known), known
        reporter.error(failure)
        if kind != "json":
            print(f"flair-landcover: error: {message}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_ERROR
    if not result.get("quiet"):
        reporter.finish(result.get("outputs", {}), result.get("stats", {}))
        if kind != "json":
            for key, path in result.get("outputs", {}).items():
                print(f"{key}: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
