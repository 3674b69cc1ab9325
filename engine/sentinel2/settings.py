"""The Sentinel-2 input of a U-T&T model: bands, super-patch, date filter, calendar, years.

`Sentinel2Settings` is the one record of these facts. A model card holds one (its ``sentinel2``
field, `engine.models.card`); the Sentinel-2 sources, the preparation of super-patches and the
U-T&T network read them from it. Its defaults are FLAIR-2's (shared/reference/UTT_FACTS.md), and
`FLAIR2` is that default record: modules that need FLAIR-2's band order, calendar or years
without a card take them from `FLAIR2`, never from a copy of the values. `Sentinel2Options` is
what a run asks for (`--sentinel2`, `--year`, the acquisition), applied over the card's record.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidInput, ModelError


@dataclass(frozen=True)
class Sentinel2Settings:
    """U-T&T's Sentinel-2 input: bands, super-patch, date filter and temporal averaging.

    Attributes:
        bands: band names in the model's channel order.
        superpatch_px: side of the super-patch cut around each tile centre.
        res_m: pixel size of the series.
        cloud_threshold: cloud probability (0..100) from which a pixel counts as cloudy.
        snow_threshold: snow probability (0..100) from which a pixel counts as snowy.
        cover_threshold: share of snowy plus cloudy pixels from which a date is dropped.
        monthly_average: whether the kept dates are averaged per calendar month.
        reference_date: ``MM-DD`` that day offsets are counted to.
        reference_year: the calendar every date is taken in (FLAIR-2 forced its products to it).
        use_metadata: whether the network takes the aerial metadata vector.
        metadata_years: years of the metadata vector's one-hot, in order.
    """

    bands: tuple[str, ...] = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
    superpatch_px: int = 40
    res_m: float = 10.0
    cloud_threshold: int = 60
    snow_threshold: int = 60
    cover_threshold: float = 0.5
    monthly_average: bool = True
    reference_date: str = "05-15"
    reference_year: int = 2021
    use_metadata: bool = True
    metadata_years: tuple[int, ...] = (2018, 2019, 2020, 2021)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Sentinel2Settings:
        """Build the record from its JSON form (a card's ``sentinel2`` object).

        Raises:
            ModelError: a field is unknown.
        """
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ModelError(f"unknown Sentinel-2 card fields: {sorted(unknown)}")
        values = dict(d)
        for key in ("bands", "metadata_years"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


FLAIR2 = Sentinel2Settings()
"""FLAIR-2's settings: the official U-T&T's band order, calendar and metadata years."""


@dataclass(frozen=True)
class Sentinel2Options:
    """The Sentinel-2 options of a run (U-T&T): where the series comes from, which year, and
    the aerial acquisition the metadata encodes. Unset values fall back to the model card's
    settings or to what the raster's tags say."""

    source: str | None = None  # stac[:URL], planetary-computer, catalog:PATH, flair:PATH
    year: int | None = None
    strict: bool = False  # a tile without a usable date is an error
    acquisition_date: dt.date | None = None
    acquisition_time: str | None = None  # HHhMM
    camera: str | None = None
    altitude_m: float | None = None
    monthly_average: bool | None = None  # None: the model card's
    cover_threshold: float | None = None  # None: the model card's

    def __post_init__(self) -> None:
        if self.cover_threshold is not None and not (
            math.isfinite(self.cover_threshold) and self.cover_threshold > 0
        ):
            raise InvalidInput("--cover-threshold must be positive (0.5 in FLAIR-2)")
        if self.altitude_m is not None and not math.isfinite(self.altitude_m):
            raise InvalidInput(f"--altitude {self.altitude_m}: give a number of metres")
