"""Loose command-line values made exact once, at the boundary: paths, code lists, shared options.

Every subcommand (predict, evaluate, models, and any later one) takes its paths through these
helpers, so a non-UTF-8 name or a GDAL path is handled the same everywhere.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.errors import InvalidInput
from engine.failures import user_path

# The words `--precision` and `--backend` take, for every command that runs a model
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BACKENDS = ("auto", "torch", "openvino")


def add_common_options(p: argparse.ArgumentParser) -> None:
    """`--progress` and `--debug`, which every subcommand takes."""
    p.add_argument(
        "--progress",
        choices=("bar", "json", "none"),
        default=None,
        help="progress display: bar on a terminal (default there), json lines for programs, none",
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of errors")


def add_backend_option(group: argparse._ActionsContainer) -> None:
    """`--backend`, which predict, region and evaluate take (engine.runtime)."""
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="inference runtime: auto (OpenVINO on the CPU where the converted network passes "
        "its check against torch, torch on CUDA), torch or openvino (default: $FLAIR_BACKEND, "
        "else auto)",
    )


def parse_codes(text: str) -> tuple[int, ...]:
    """`1-12,19` -> (1, ..., 12, 19)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                out.extend(range(int(a), int(b) + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise InvalidInput(f"{text!r} must be class codes like 1-12,19") from None
    return tuple(out)


def require_utf8(text: str, what: str) -> None:
    """GDAL takes UTF-8 names only; a name whose bytes are not UTF-8 reaches Python with
    surrogate escapes (os.fsdecode) and is refused here with a message, not a codec error."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(text).decode("utf-8", "backslashreplace")
        raise InvalidInput(
            f"{what} {shown}: the name is not valid UTF-8, which GDAL needs; rename the file "
            "(and its folders) with UTF-8 characters"
        ) from None


def input_path(text: str, what: str) -> Path | str:
    """A raster or vector input: GDAL paths (/vsizip//abs/x.zip/a.tif, URLs) untouched,
    local ones made absolute."""
    require_utf8(text, what)
    path = user_path(text)
    return path if isinstance(path, str) else path.absolute()


def output_path(path: Path | None, what: str) -> Path | None:
    """An output file: checked for UTF-8, `~` expanded (None stays None)."""
    if path is None:
        return None
    require_utf8(str(path), what)
    return path.expanduser()
