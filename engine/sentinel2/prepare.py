"""From a super-patch to the model's Sentinel-2 input, as FLAIR-2's dataset prepares it.

1. Date filter: a date is dropped when (pixels with snow >= snow_threshold + pixels with
   cloud >= cloud_threshold) / (number of pixels) reaches `cover_threshold`; a pixel both snowy
   and cloudy counts twice (FLAIR-2's ``filter_dates`` with both channels).
2. Monthly means (optional): one image per calendar month that keeps at least one date, in
   chronological order, the float64 mean of that month's kept images, dated the 15th.
3. Day offsets: ``reference date - date`` in days (positive before the reference), where the
   date takes the reference year: FLAIR-2 forces the year of its products to 2021, and the
   model learnt its positional encoding on that calendar. Live STAC series are treated the same
   way: the acquisition's month and day in the reference year (a 29 February counts as the 28th).
4. Values stay raw digital numbers (reflectance x 10000), float32: what the official model
   consumes after monthly averaging. Without monthly averaging the official code would divide
   integer arrays by their dtype's maximum (``img_as_float``); that scale is not reproduced here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from engine.errors import InvalidInput
from engine.sentinel2.settings import Sentinel2Settings


@dataclass(frozen=True, eq=False)
class SuperPatch:
    """A super-patch's full time series.

    Attributes:
        data: float32 (T, 10, S, S), raw digital numbers in model band order.
        masks: (T, 2, S, S) probabilities 0..100, channel 0 snow, channel 1 cloud.
        dates: the T acquisition dates.
    """

    data: np.ndarray
    masks: np.ndarray
    dates: list[dt.date]

    def __post_init__(self) -> None:
        t = len(self.dates)
        if self.data.ndim != 4 or self.masks.ndim != 4 or self.masks.shape[1] != 2:
            raise InvalidInput(
                f"super-patch arrays must be (T, C, H, W) and (T, 2, H, W), got "
                f"{self.data.shape} and {self.masks.shape}"
            )
        if self.data.shape[0] != t or self.masks.shape[0] != t:
            raise InvalidInput(
                f"super-patch has {t} dates for {self.data.shape[0]} images and "
                f"{self.masks.shape[0]} masks"
            )
        if self.data.shape[2:] != self.masks.shape[2:]:
            raise InvalidInput(
                f"super-patch images {self.data.shape[2:]} and masks {self.masks.shape[2:]} "
                "differ in size"
            )


@dataclass(frozen=True, eq=False)
class PreparedSeries:
    """The model's Sentinel-2 input for one tile.

    Attributes:
        data: float32 (T, 10, S, S).
        day_offsets: float32 (T,), days from each image's date to the reference date.
    """

    data: np.ndarray
    day_offsets: np.ndarray


def reference_date(settings: Sentinel2Settings) -> dt.date:
    """The reference date (``reference_year-reference_date``)."""
    try:
        month, day = (int(v) for v in settings.reference_date.split("-"))
        return dt.date(settings.reference_year, month, day)
    except ValueError as exc:
        raise InvalidInput(
            f"reference date {settings.reference_date!r} must be MM-DD (for example 05-15)"
        ) from exc


def in_reference_year(date: dt.date, year: int) -> dt.date:
    """`date`'s month and day in `year` (29 February becomes the 28th in a common year)."""
    try:
        return date.replace(year=year)
    except ValueError:
        return dt.date(year, 2, 28)


def day_offset(date: dt.date, settings: Sentinel2Settings) -> int:
    """Days from `date` (month and day taken in the reference year) to the reference date."""
    return (reference_date(settings) - in_reference_year(date, settings.reference_year)).days


def kept_dates(masks: np.ndarray, settings: Sentinel2Settings) -> list[int]:
    """Indices of the dates that pass FLAIR-2's snow and cloud filter.

    Args:
        masks: (T, 2, H, W), channel 0 snow, channel 1 cloud, probabilities 0..100.
        settings: thresholds.
    """
    t, _, h, w = masks.shape
    snowy = np.count_nonzero(masks[:, 0] >= settings.snow_threshold, axis=(1, 2))
    cloudy = np.count_nonzero(masks[:, 1] >= settings.cloud_threshold, axis=(1, 2))
    cover = (snowy + cloudy) / float(h * w)
    return [i for i in range(t) if cover[i] < settings.cover_threshold]


def monthly_means(
    data: np.ndarray, dates: list[dt.date]
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Float64 mean image of each calendar month present, in chronological order.

    Returns:
        (M, C, H, W) float64 means and the M (year, month) pairs.
    """
    months = sorted({(d.year, d.month) for d in dates})
    means = [
        np.mean(
            np.asarray(data[[i for i, d in enumerate(dates) if (d.year, d.month) == ym]]),
            axis=0,
            dtype=np.float64,
        )
        for ym in months
    ]
    shape = (0, *data.shape[1:])
    return (np.stack(means) if means else np.zeros(shape, np.float64)), months


def prepare_superpatch(sp: SuperPatch, settings: Sentinel2Settings) -> PreparedSeries | None:
    """Filter, average and date a super-patch as FLAIR-2 does.

    Args:
        sp: the super-patch (any number of dates, in any order).
        settings: the model card's Sentinel-2 settings.

    Returns:
        The prepared series, or None when no date survives the filter (the caller then runs
        the aerial branch alone).
    """
    order = sorted(range(len(sp.dates)), key=lambda i: sp.dates[i])
    keep = [order[i] for i in kept_dates(np.asarray(sp.masks)[order], settings)]
    if not keep:
        return None
    dates = [sp.dates[i] for i in keep]
    if settings.monthly_average:
        data, months = monthly_means(np.asarray(sp.data)[keep], dates)
        offsets = [day_offset(dt.date(y, m, 15), settings) for y, m in months]
    else:
        data = np.asarray(sp.data)[keep]
        offsets = [day_offset(d, settings) for d in dates]
    return PreparedSeries(
        data=np.ascontiguousarray(data, dtype=np.float32),
        day_offsets=np.asarray(offsets, dtype=np.float32),
    )
