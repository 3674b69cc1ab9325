"""Engine command lines built from plain values (paths, numbers, strings): no QGIS objects."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .fields import CHANNEL_FIELDS, option

CHANNELS = tuple(CHANNEL_FIELDS)  # R, G, B, NIR, E: FLAIR's order, as `--bands` names them

SENTINEL2_SOURCES: tuple[tuple[str, str], ...] = (
    ("none", "None (U-Net models)"),
    ("stac", "STAC API (default: Earth Search sentinel-2-c1-l2a)"),
    ("catalog", "Local static STAC catalogue"),
    ("flair", "FLAIR #2 dataset folder"),
)
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
# the engine's --backend values, in the order of the "Inference runtime" field's choices
BACKENDS: tuple[str, ...] = ("auto", "torch", "openvino")
BACKEND_CHOICES: tuple[str, ...] = (
    "Automatic (OpenVINO on the CPU where the converted network passes its check, else PyTorch)",
    "PyTorch",
    "OpenVINO",
)
OUTPUT_RESOLUTIONS: tuple[str, ...] = ("model", "input")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def sentinel2_spec(kind: str, location: str) -> str | None:
    """The engine's `--sentinel2` value, or None for no Sentinel-2 input.

    `stac` gives `stac` (Earth Search), `stac:URL[#collection]`, or `planetary-computer` when
    the location names it; `catalog` gives `catalog:PATH[#collection]` (a `catalog.json` or its
    folder); `flair` gives `flair:PATH`. A location already written as the engine's spec
    (`catalog:/data/s2`) is taken as it is.

    Raises:
        ValueError: the location is missing or has the wrong form for the source.
    """
    location = location.strip()
    if kind == "none":
        return None
    if kind not in ("stac", "catalog", "flair"):
        raise ValueError(f"unknown Sentinel-2 source {kind!r}")
    if location.lower().startswith(f"{kind}:"):
        location = location[len(kind) + 1 :].strip()
    if kind == "stac":
        if not location:
            return "stac"
        if location.lower() in ("planetary-computer", "pc"):
            return "planetary-computer"
        if not location.lower().startswith(("http://", "https://")):
            raise ValueError(
                f"SENTINEL2_LOCATION {location!r}: a STAC API is an http:// or https:// URL "
                "(optionally #collection), 'planetary-computer', or empty for Earth Search"
            )
        return f"stac:{location}"
    if not location:
        what = "a catalogue file or its folder" if kind == "catalog" else "the dataset folder"
        raise ValueError(f"the Sentinel-2 source '{kind}' needs SENTINEL2_LOCATION ({what})")
    return f"{kind}:{location}"


def acquisition_date(text: str) -> str:
    """`text` checked as the engine's `--acquisition-date` (YYYY-MM-DD); '' stays ''.

    Raises:
        ValueError: not a calendar date written YYYY-MM-DD.
    """
    text = text.strip()
    if not text:
        return ""
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"ACQUISITION_DATE {text!r} is not a date written YYYY-MM-DD (e.g. 2021-06-20)"
        ) from None
    return text


@dataclass(frozen=True)
class PredictRequest:
    """Everything `engine predict` needs, as plain values."""

    input_path: str
    output_path: str
    model: str
    bands: Mapping[str, int]  # channel -> band, only those the user set (R, G, B, NIR, E)
    card_path: str = ""
    elevation: str = ""  # "PATH" or "PATH:BAND"
    extent: tuple[float, float, float, float] | None = None  # in the input raster's CRS
    mask_path: str = ""
    device: str = "auto"
    backend: str = "auto"
    tile_size_px: int = 0
    margin_px: int = -1
    batch_size: int = 0
    output_resolution: str = "model"
    # the optional outputs asked for, by dialog field (the engine's output table: CONFIDENCE,
    # STATS, POLYGONS, ...) -> path; each becomes its option
    other_outputs: Mapping[str, str] = field(default_factory=dict)
    sentinel2: str | None = None
    year: int = 0
    acquisition_date: str = ""  # YYYY-MM-DD, '' = the raster's date tag
    strict: bool = False

    def arguments(self) -> list[str]:
        """The argument list after `python -m engine`; each option comes from the dialog's
        field table (`fields.py`), which also turns the engine's messages back into fields."""
        args = [
            "predict",
            self.input_path,
            self.output_path,
            option("MODEL"),
            self.model,
            option("DEVICE"),
            self.device,
            option("BACKEND"),
            self.backend,
            option("OUTPUT_RESOLUTION"),
            self.output_resolution,
            "--progress",
            "json",
            "--overwrite",
        ]
        if self.bands:  # only the bands the user set: the engine's own rule completes them
            named = ",".join(f"{c}={self.bands[c]}" for c in CHANNELS if self.bands.get(c))
            args += [option("BAND_RED"), named]
        if self.card_path:
            args += [option("MODEL_CARD"), self.card_path]
        if self.elevation:
            args += [option("ELEVATION"), self.elevation]
        if self.extent is not None:
            bounds = ",".join(repr(float(v)) for v in self.extent)
            args += [option("EXTENT"), bounds]
        if self.mask_path:
            args += [option("MASK"), self.mask_path]
        if self.tile_size_px > 0:
            args += [option("TILE_SIZE"), str(self.tile_size_px)]
        if self.margin_px >= 0:
            args += [option("MARGIN"), str(self.margin_px)]
        if self.batch_size > 0:
            args += [option("BATCH_SIZE"), str(self.batch_size)]
        for name, value in self.other_outputs.items():  # by dialog field: the output table's
            if value:
                args += [option(name), value]
        if self.sentinel2:
            args += [option("SENTINEL2_SOURCE"), self.sentinel2]
            if self.year:
                args += [option("YEAR"), str(self.year)]
            if self.acquisition_date:
                args += [option("ACQUISITION_DATE"), self.acquisition_date]
            if self.strict:
                args.append(option("STRICT_SENTINEL2"))
        args.append("--download")  # the registry's weights, fetched on first use
        return args


def runtime_summary(done: dict) -> str:
    """What ran the network, from the `done` event's run record (its `runtime`), for the log;
    '' when the event has none."""
    run = done.get("run") if isinstance(done.get("run"), dict) else {}
    runtime = run.get("runtime") if isinstance(run.get("runtime"), dict) else {}
    if not runtime.get("name"):
        return ""
    return (
        f"Inference runtime: {runtime['name']} {runtime.get('precision') or ''} "
        f"({runtime.get('why') or ''})"
    )


def engine_command(python: str | Path, arguments: Sequence[str]) -> list[str]:
    """`python -m engine ARGS...` as an argument list."""
    return [str(python), "-m", "engine", *arguments]


def evaluate_arguments(
    prediction: str, reference: str, report_dir: str, mask: str = ""
) -> list[str]:
    """The argument list of `engine evaluate` for a prediction raster against a reference."""
    args = [
        "evaluate",
        "--prediction",
        prediction,
        "--reference",
        reference,
        "--report",
        report_dir,
        "--progress",
        "json",
    ]
    if mask:
        args += ["--mask", mask]
    return args
