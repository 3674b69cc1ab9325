"""The aerial-metadata vector of FLAIR-2's U-T&T (45 values), built as the official dataset does.

Layout (official `adding_encoded_metadata`):

* `[0:32]` position: x and y (Lambert-93 metres) each divided by 1e8, then for i = 0..7 with
  f_i = 1e8 ** (-2 i / 16): x fills slots 0..15 as sin(x f_i), cos(x f_i) pairs, y slots 16..31.
* `[32]` altitude / 3164.9099121094 (the dataset maximum).
* `[33:35]` camera: `[1, 0]` when the camera name contains "UCE", else `[0, 1]`.
* `[35:39]` one-hot of the year among the model's years (FLAIR-2: 2018, 2019, 2020, 2021).
* `[39:45]` `(v + 1) / 2` of sin and cos of the month, of the day (2 pi day / 31) and of the time
  of day (2 pi seconds / 86400).

The official month term computes `2 pi (month - 1/12)` instead of `2 pi (month - 1) / 12`, so
its sine and cosine are the same for every month (0.25 and 0.9330 after scaling). The models
were trained with that, so it is reproduced here on purpose.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputNotFound, InvalidInput
from engine.sentinel2.settings import FLAIR2

GEO_ENC_SIZE = 32
"""Length of the position code (the official loader always uses 32)."""

COORD_SCALE = 1e8
"""Coordinates are divided by this (written `10e7` in the official code) before encoding."""

ALTITUDE_MAX_M = 3164.9099121094
"""Altitude normaliser: the highest patch centroid of the FLAIR dataset."""

DEFAULT_YEARS = FLAIR2.metadata_years
"""The official U-T&T's years (`Sentinel2Settings.metadata_years` of FLAIR-2)."""


def metadata_length(n_years: int = len(DEFAULT_YEARS)) -> int:
    """Length of the vector: position, altitude, camera, year one-hot, six cyclic terms."""
    return GEO_ENC_SIZE + 1 + 2 + n_years + 6


def encode_position(x_m: float, y_m: float) -> np.ndarray:
    """The 32-value sinusoidal code of a Lambert-93 position (float64)."""
    d = GEO_ENC_SIZE // 2
    freq = 1.0 / (COORD_SCALE ** (2 * np.arange(0, d / 2) / d))
    x, y = x_m / COORD_SCALE, y_m / COORD_SCALE
    code = np.zeros(2 * d)
    code[0:d:2] = np.sin(x * freq)
    code[1:d:2] = np.cos(x * freq)
    code[d::2] = np.sin(y * freq)
    code[d + 1 :: 2] = np.cos(y * freq)
    return code


def _half(v: float) -> float:
    return (v + 1.0) / 2.0


def _parse_date(date: str | dt.date) -> dt.date:
    if isinstance(date, dt.date):
        return date
    try:
        return dt.date.fromisoformat(str(date).strip()[:10])
    except ValueError as exc:
        raise InvalidInput(f"acquisition date {date!r} is not YYYY-MM-DD") from exc


def _parse_seconds(time: str | dt.time) -> int:
    if isinstance(time, dt.time):
        return time.hour * 3600 + time.minute * 60
    text = str(time).strip().lower().replace(":", "h")
    try:
        hours, minutes = text.split("h")[:2]
        seconds = int(hours) * 3600 + int(minutes) * 60
    except ValueError as exc:
        raise InvalidInput(f"acquisition time {time!r} is not HHhMM (e.g. 10h45) or HH:MM") from exc
    if not 0 <= seconds < 86400:
        raise InvalidInput(f"acquisition time {time!r} is outside 00h00..23h59")
    return seconds


def encode_metadata(
    x_m: float,
    y_m: float,
    altitude_m: float,
    camera: str,
    date: str | dt.date,
    time: str | dt.time,
    years: Sequence[int] = DEFAULT_YEARS,
) -> np.ndarray:
    """The metadata vector of one aerial tile.

    Args:
        x_m: Tile centre easting, Lambert-93 (EPSG:2154) metres.
        y_m: Tile centre northing, Lambert-93 metres.
        altitude_m: Ground altitude at the tile centre, metres.
        camera: Camera name; only whether it contains "UCE" matters (UltraCam Eagle).
        date: Acquisition date, `YYYY-MM-DD` or a date.
        time: Acquisition time of day, `HHhMM` (FLAIR's form), `HH:MM` or a time.
        years: The years the model's one-hot knows, in order (the card's
            `sentinel2.metadata_years`).

    Returns:
        float32 array of `metadata_length(len(years))` values (45 for FLAIR-2).

    Raises:
        InvalidInput: The year is not one the model knows, or the date or time cannot be read.
    """
    day = _parse_date(date)
    if day.year not in years:
        raise InvalidInput(
            f"acquisition year {day.year} is outside the years this U-T&T model knows "
            f"({', '.join(str(y) for y in years)}); its metadata encoding has no slot for it. "
            "Give an acquisition date in one of those years (e.g. the nearest), or use a model "
            "without aerial metadata"
        )
    seconds = _parse_seconds(time)
    year_code = [1.0 if y == day.year else 0.0 for y in years]
    month_angle = 2 * np.pi * (day.month - 1 / 12)  # official bug, kept: constant for all months
    cyclic = [
        np.sin(month_angle),
        np.cos(month_angle),
        np.sin(2 * np.pi * (day.day / 31)),
        np.cos(2 * np.pi * (day.day / 31)),
        np.sin(2 * np.pi * (seconds / 86400)),
        np.cos(2 * np.pi * (seconds / 86400)),
    ]
    camera_code = [1.0, 0.0] if "UCE" in camera else [0.0, 1.0]
    values = [
        *encode_position(float(x_m), float(y_m)),
        float(altitude_m) / ALTITUDE_MAX_M,
        *camera_code,
        *year_code,
        *(_half(v) for v in cyclic),
    ]
    return np.asarray(values, dtype=np.float64).astype(np.float32)


FLAIR_FIELDS = (
    "patch_centroid_x",
    "patch_centroid_y",
    "patch_centroid_z",
    "camera",
    "date",
    "time",
)


def metadata_from_flair_entry(
    entry: Mapping[str, Any], years: Sequence[int] = DEFAULT_YEARS
) -> np.ndarray:
    """The metadata vector from one entry of FLAIR's aerial metadata JSON.

    Args:
        entry: e.g. `{"patch_centroid_x": 489353.59, "patch_centroid_y": 6587040.5,
            "patch_centroid_z": 302.09, "camera": "UCE-M3-f120-s06", "date": "2018-10-04",
            "time": "11h55", ...}`; other fields are ignored.
        years: The model's years, as for `encode_metadata`.

    Returns:
        float32 array, as `encode_metadata`.
    """
    missing = [f for f in FLAIR_FIELDS if f not in entry]
    if missing:
        raise InvalidInput(f"FLAIR metadata entry lacks {missing}; it needs {list(FLAIR_FIELDS)}")
    return encode_metadata(
        x_m=float(entry["patch_centroid_x"]),
        y_m=float(entry["patch_centroid_y"]),
        altitude_m=float(entry["patch_centroid_z"]),
        camera=str(entry["camera"]),
        date=str(entry["date"]),
        time=str(entry["time"]),
        years=years,
    )


def load_flair_metadata(path: Path) -> dict[str, dict[str, Any]]:
    """Read FLAIR's aerial metadata JSON (`flair-2_aerial_metadata.json`): image id -> entry."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"FLAIR aerial metadata file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"FLAIR aerial metadata file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"FLAIR aerial metadata file {path} is not a JSON object of images")
    return data


def flair_entry_for(metadata: Mapping[str, Any], image_name: str) -> Mapping[str, Any]:
    """The entry of an image, by `IMG_012345`, `IMG_012345.tif` or a path to it."""
    key = Path(image_name).stem
    if key not in metadata:
        raise InvalidInput(f"image {key} is not in the FLAIR aerial metadata file")
    return metadata[key]
