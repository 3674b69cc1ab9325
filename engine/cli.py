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
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from engine import __version__
from engine.cli_values import add_common_options
from engine.errors import Cancelled, EngineError
from engine.failures import explain_unexpected
from engine.interrupt import EXIT_SIGNAL, run_interruptible
from engine.memory import release_large_buffers
from engine.predict_cli import add_parser as add_predict
from engine.progress import JsonLinesReporter, Reporter, make_reporter
from engine.protocol import error, hello
from engine.region_cli import add_parser as add_region

EXIT_ERROR = 1


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list known models, or download one",
        description="List the registry's models (inputs, classes, cached state).",
    )
    p.add_argument("action", nargs="?", choices=("list", "download"), default="list")
    p.add_argument("name", nargs="?", help="model to download")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_common_options(p)
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
                f"{mark} {row['name']:<36} {','.join(row['channels']):<13} "
                f"{len(row['active_codes']):>2} classes  {state:<15} {row['source']['repo_id']}"
            )
        print("* default model. Download with: flair-landcover models download NAME")
    return {"outputs": {}, "stats": {}, "quiet": True}


def _add_cleanup(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cleanup",
        help="remove what a killed run left beside its destinations",
        description=(
            "Remove the hidden working files (temporaries, locks) that a run stopped with "
            "SIGKILL left beside these destinations; a live run's files are kept. The "
            "destinations themselves are never touched. Reports what is still there."
        ),
    )
    p.add_argument("destinations", nargs="+", help="output files of the killed run")
    add_common_options(p)
    p.set_defaults(func=_run_cleanup)


def _run_cleanup(args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    from pathlib import Path

    from engine.io.destination import sweep

    remaining = [str(p) for d in args.destinations for p in sweep(Path(d))]
    for path in remaining:
        reporter.log(f"still there: {path}", "WARNING", path=path)
    return {"outputs": {}, "stats": {"remaining": remaining}}


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
        if _wants_json(argv):  # the handshake, then the error: the plugin reads both
            text = f"{exc.message} (see {prog} --help)"
            for event in (hello(__version__), error("usage", "UsageError", text)):
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
    add_predict(sub)
    add_region(sub)
    _add_models(sub)
    _add_cleanup(sub)
    try:
        from engine.evaluation.cli import add_parser as add_evaluate
    except ImportError:
        add_evaluate = None
    if add_evaluate is not None:
        add_evaluate(sub)
    from engine.figures.change_cli import add_parser as add_change
    from engine.figures.zones_cli import add_parser as add_zones

    add_zones(sub)
    add_change(sub)
    return parser


def _greet(
    reporter: Reporter,
    func: Callable[[argparse.Namespace, Reporter], dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The run, after the protocol's `hello` (`--progress json`): said once the signal handlers
    are in place, so that a reader may stop the run as soon as it has read the first line."""
    if isinstance(reporter, JsonLinesReporter):
        reporter.hello()
    return func(args, reporter)


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

    def cancelled() -> None:
        """Say what a stop left: nothing, or for a region the blocks it keeps on purpose."""
        describe = getattr(args, "cancel_message", None)
        text = describe(args) if describe else "cancelled; no output was left behind"
        reporter.error(Cancelled(text))
        if kind != "json":
            print(f"flair-landcover: {text}", file=sys.stderr)

    def hard_stop(code: int) -> None:
        cancelled()

    try:
        result = run_interruptible(
            lambda: _greet(reporter, func, args), reporter, received, hard_stop
        )
    except (Cancelled, KeyboardInterrupt):
        cancelled()
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
        reporter.finish(result.get("outputs", {}), result.get("stats", {}), result.get("run"))
        if kind != "json":
            for key, path in result.get("outputs", {}).items():
                print(f"{key}: {path}", file=sys.stderr)
    return 0


def entry() -> NoReturn:
    """The console entry point: `main`, then a prompt exit when a signal stopped the run.

    A cancelled run has already removed its outputs and said so; what remains is the
    interpreter's teardown of torch, GDAL and their modules, measured at 1.5 to 2 s here, which
    a user (or the plugin) waiting for the process to end after a cancel should not wait for.
    """
    code = main()
    if code in EXIT_SIGNAL.values():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
