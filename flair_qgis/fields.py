"""One table: each dialog field of `flair:landcover`, its label, and the engine option it sets.

The command line is built from it (`PredictRequest.arguments` looks its options up here), and
engine messages are turned from command-line words into the dialog's words with it: "give them
with --bands" becomes "set Band for near infrared (BAND_NIR)", because the user of the dialog
never typed `--bands`.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Field(NamedTuple):
    """A parameter of the dialog: id (public API), label, and the engine option it gives."""

    name: str
    label: str
    option: str = ""
    unset: str = ""  # what the form adds to the label: what leaving the field empty does

    @property
    def form_label(self) -> str:
        """The label in the dialog, with what an empty or 0 value means ("automatic")."""
        return f"{self.label} ({self.unset})" if self.unset else self.label

    @property
    def shown(self) -> str:
        """How messages name it: the label the form shows, then the id scripts use."""
        return f"{self.label} ({self.name})"


FIELDS: tuple[Field, ...] = (
    Field("INPUT", "Orthophoto"),
    Field("BAND_RED", "Band for red", "--bands", "not set: automatic"),
    Field("BAND_GREEN", "Band for green", "--bands", "not set: automatic"),
    Field("BAND_BLUE", "Band for blue", "--bands", "not set: automatic"),
    Field("BAND_NIR", "Band for near infrared", "--bands", "not set: automatic"),
    Field(
        "BAND_ELEVATION", "Band for elevation (in the orthophoto)", "--bands", "not set: automatic"
    ),
    Field("ELEVATION", "Separate elevation raster", "--elevation"),
    Field("ELEVATION_BAND", "Band of the elevation raster", "--elevation", "not set: automatic"),
    Field("MODEL", "Model", "--model"),
    Field("MODEL_FILE", "Model checkpoint (overrides Model)", "--model"),
    Field("MODEL_CARD", "Model card (JSON)", "--card"),
    Field("EXTENT", "Extent", "--extent"),
    Field("MASK", "Mask polygons", "--mask"),
    Field("DEVICE", "Device", "--device"),
    Field("BACKEND", "Inference runtime", "--backend"),
    Field("TILE_SIZE", "Tile size (px)", "--tile-size", "0: automatic"),
    Field("MARGIN", "Margin (px)", "--margin", "not set: automatic"),
    Field("BATCH_SIZE", "Batch size", "--batch-size", "0: automatic"),
    Field("OUTPUT_RESOLUTION", "Output resolution", "--output-resolution"),
    Field("EXPORT_PIXEL_LIMIT", "Pixel limit for temporary exports"),
    Field("SENTINEL2_SOURCE", "Sentinel-2 source (U-T&T)", "--sentinel2"),
    Field("SENTINEL2_LOCATION", "Sentinel-2 location (URL or path)", "--sentinel2"),
    Field("YEAR", "Year of the Sentinel-2 series", "--year", "not set: automatic"),
    Field(
        "ACQUISITION_DATE", "Acquisition date of the orthophoto (YYYY-MM-DD)", "--acquisition-date"
    ),
    Field("STRICT_SENTINEL2", "Fail on tiles without a usable Sentinel-2 date", "--strict"),
    Field("OUTPUT", "Land cover", "output"),
    Field("CONFIDENCE", "Confidence (%)", "--confidence"),
    Field("STATS", "Class statistics", "--stats"),
    Field("POLYGONS", "Land-cover polygons", "--polygons"),
)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
# the band field of each channel the engine names (R, G, B, NIR, E)
CHANNEL_FIELDS: dict[str, str] = {
    "R": "BAND_RED",
    "G": "BAND_GREEN",
    "B": "BAND_BLUE",
    "NIR": "BAND_NIR",
    "E": "BAND_ELEVATION",
}
WEIGHTS_ERRORS = ("WeightsNotAvailable", "DownloadError")
_OPTION = re.compile(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)")
_ONE = re.compile(r"(?<![\d.,])(1) (tile|block|step|band|date|file)s\b")
_MISSING = re.compile(r"lacks ((?:(?:R|G|B|NIR|E) \([^)]*\)(?:, )?)+)")


def label(name: str) -> str:
    """The label of a parameter id."""
    return BY_NAME[name].label


def form_label(name: str) -> str:
    """The label the dialog shows for a parameter id."""
    return BY_NAME[name].form_label


def option(name: str) -> str:
    """The engine option a parameter id gives."""
    return BY_NAME[name].option


def _fields_for(flag: str, channels: tuple[str, ...]) -> str:
    """The dialog's words for an engine option; for `--bands` the band fields of `channels`
    when the message names the missing ones."""
    if flag == "--bands":
        names = [CHANNEL_FIELDS[c] for c in channels] or list(CHANNEL_FIELDS.values())
        return " / ".join(BY_NAME[n].shown for n in names)
    if flag == "--elevation":
        return BY_NAME["ELEVATION"].shown
    if flag == "--model":
        return f"{BY_NAME['MODEL'].shown} or {BY_NAME['MODEL_FILE'].shown}"
    matches = [f for f in FIELDS if f.option == flag]
    return " / ".join(f.shown for f in matches) if matches else flag


def for_dialog(kind: str, message: str) -> str:
    """An engine message with its command-line options replaced by the dialog's fields, and,
    when the weights are missing, the fix the dialog offers."""
    missing = _MISSING.search(message)
    channels = tuple(part.split(" ")[0] for part in missing.group(1).split(", ")) if missing else ()

    def replace(match: re.Match) -> str:
        flag = match.group(1)
        return _fields_for(flag, channels) if any(f.option == flag for f in FIELDS) else flag

    text = re.sub(r"\s*\(or add --download[^)]*\)", "", message)  # the plugin always adds it
    text = re.sub(r"(--elevation) DSM\.tif(:BAND)?", r"\1", text)
    text = _OPTION.sub(replace, text)
    text = _ONE.sub(r"\1 \2", text)  # "1 tiles of 1280 px" -> "1 tile of 1280 px"
    if kind in WEIGHTS_ERRORS:
        text += (
            f". Or, with the weights file (.pth or .safetensors) downloaded on another "
            f"machine, pick it in "
            f"{BY_NAME['MODEL_FILE'].shown}, or put it in the weights folder of "
            "Processing > Options > Providers > FLAIR"
        )
    return text
