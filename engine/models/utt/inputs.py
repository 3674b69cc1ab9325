"""U-T&T's extra inputs: Sentinel-2 super-patches and metadata, per tile or per FLAIR patch.

`Sentinel2Inputs` is the pipeline's extras provider for U-T&T. Given a batch of tiles (windows
on the run's work grid), it cuts each tile's super-patch from the series loaded once for the
area, centred on the tile's centre (the centre of its 512 px read window, as FLAIR-2 centres
the 40 x 40 px super-patch on the 102.4 m aerial patch), prepares it as FLAIR-2 did
(`prepare_superpatch`), and stacks the batch with zero frames as padding (`stack_series`,
shared with the benchmark evaluation). A tile whose every date is filtered out gets only
padding, so the network runs its aerial branch alone for it; it is counted, or with `strict`
it stops the run. `UsableDates` is that count, shared with `evaluate` on FLAIR patches
(`engine.models.utt.flair_patches`), so both report the same figures.

The metadata vector (`encode_metadata`) takes the tile centre in Lambert-93 and the
acquisition's date, time, camera and altitude (`Acquisition`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import InvalidInput
from engine.grid import Grid
from engine.models.extras import ExtraInputs
from engine.models.utt.metadata import encode_metadata
from engine.progress import Reporter
from engine.sentinel2.cube import SeriesCube
from engine.sentinel2.prepare import PreparedSeries, prepare_superpatch
from engine.sentinel2.settings import Sentinel2Settings
from engine.tiling import Tile

LAMBERT93 = "EPSG:2154"
DATE_TAGS = ("ACQUISITION_DATE", "ACQUISITION_DATETIME", "TIFFTAG_DATETIME", "DATETIME")
LOGGED_TILES = 5  # tiles without a usable date named one by one in the log, then only counted


def stack_series(
    series: Sequence[PreparedSeries | None], bands: int, size_px: int
) -> tuple[np.ndarray, np.ndarray]:
    """Prepared series (or None) stacked as zero-padded `s2` (B, T, C, S, S) and `dates` (B, T).

    Shorter series are padded at the end with all-zero frames and date 0 (FLAIR-2's
    `pad_collate`); a None gives a sample of padding only (aerial branch alone).
    """
    t = max((s.data.shape[0] for s in series if s is not None), default=0)
    s2 = np.zeros((len(series), max(t, 1), bands, size_px, size_px), dtype=np.float32)
    dates = np.zeros((len(series), max(t, 1)), dtype=np.float32)
    for i, s in enumerate(series):
        if s is None:
            continue
        n = s.data.shape[0]
        s2[i, :n] = s.data
        dates[i, :n] = s.day_offsets
    return s2, dates


def tile_centre(grid: Grid, tile: Tile) -> tuple[float, float]:
    """(x, y) of the centre of a tile's read window on `grid`, in the grid's CRS."""
    xmin, ymin, xmax, ymax = grid.window_bounds(tile.read)
    return (xmin + xmax) / 2.0, (ymin + ymax) / 2.0


def centres_bounds(grid: Grid, tiles: Sequence[Tile]) -> tuple[float, float, float, float]:
    """Bounds covering `grid` and every tile centre (edge tiles' centres may lie outside it)."""
    xs, ys = zip(*(tile_centre(grid, t) for t in tiles), strict=True) if tiles else ((), ())
    xmin, ymin, xmax, ymax = grid.bounds
    return (min(xmin, *xs), min(ymin, *ys), max(xmax, *xs), max(ymax, *ys))


class UsableDates:
    """Counts the tiles (or patches) whose Sentinel-2 series kept a date, names the first few
    that kept none, and sums it up: the one Sentinel-2 extras contract of predict and evaluate.

    Args:
        what: "tile" or "patch", for messages.
        say: `Reporter.log`.
        strict: a tile without a usable date is an error (`--strict`), not a warning.
        year: for the strict error's message.
    """

    def __init__(
        self, what: str, say: Callable[..., None], strict: bool = False, year: int | None = None
    ) -> None:
        self.what = what
        self.plural = what + ("es" if what.endswith("ch") else "s")  # tiles, patches
        self.say = say
        self.strict = strict
        self.year = year
        self.seen = 0
        self.without = 0
        self.dates_per_item: list[int] = []

    def record(self, prepared: PreparedSeries | None, where: str) -> PreparedSeries | None:
        """Count one tile's prepared series (None: no usable date) and pass it through."""
        self.seen += 1
        if prepared is not None:
            self.dates_per_item.append(int(prepared.data.shape[0]))
            return prepared
        if self.strict:
            raise InvalidInput(
                f"{where}: no Sentinel-2 date of {self.year or 'the year'} passes the "
                "cloud/snow filter (or covers its whole super-patch); drop --strict to run the "
                "aerial branch alone there, or choose another year",
                option="--strict",
            )
        self.without += 1
        if self.without <= LOGGED_TILES:
            last = self.without == LOGGED_TILES
            more = f" (further {self.plural} only counted)" if last else ""
            self.say(f"{where}: no usable Sentinel-2 date; aerial branch alone{more}", "WARNING")
        return None

    def summary(self) -> dict[str, Any]:
        """The figures (also said in the log)."""
        per = self.dates_per_item
        figures = {
            self.plural: self.seen,
            f"{self.plural}_without_sentinel2": self.without,
            f"dates_per_{self.what}": {
                "min": min(per, default=0),
                "max": max(per, default=0),
                "mean": round(float(np.mean(per)), 3) if per else 0.0,
            },
        }
        self.say(
            f"Sentinel-2: {self.seen - self.without} of {self.seen} {self.plural} used the series "
            f"({min(per, default=0)}-{max(per, default=0)} dates each), {self.without} ran on "
            "the aerial image alone"
        )
        return figures


@dataclass(frozen=True)
class Acquisition:
    """When and how the orthophoto was taken, for U-T&T's metadata vector.

    Attributes:
        date: Acquisition date (its year must be one the model knows).
        time: Time of day, `HHhMM`.
        camera: Camera name; only whether it contains "UCE" (UltraCam Eagle) matters.
        altitude_m: Ground altitude in metres (one value for the whole run).
    """

    date: dt.date
    time: str
    camera: str
    altitude_m: float


def acquisition_from_tags(tags: Mapping[str, str]) -> tuple[dt.date | None, str | None]:
    """Date and time (`HHhMM`) from a raster's metadata tags, when one of `DATE_TAGS` has them.

    Understands `YYYY:MM:DD HH:MM:SS` (TIFFTAG_DATETIME) and ISO forms (`YYYY-MM-DD`,
    `YYYY-MM-DDTHH:MM[:SS]`).
    """
    upper = {k.upper(): str(v).strip() for k, v in tags.items()}
    for key in DATE_TAGS:
        text = upper.get(key)
        if not text:
            continue
        date_part, _, time_part = text.replace("T", " ").partition(" ")
        date_part = date_part.replace(":", "-").replace("/", "-")
        try:
            day = dt.date.fromisoformat(date_part[:10])
        except ValueError:
            continue
        hhmm = time_part.split(":")[:2]
        time = (
            f"{int(hhmm[0]):02d}h{int(hhmm[1]):02d}"
            if len(hhmm) == 2 and all(p.isdigit() for p in hhmm)
            else None
        )
        return day, time
    return None, None


class MetadataEncoder:
    """The metadata vector of a tile from its centre (processing CRS) and the acquisition."""

    def __init__(self, crs: Any, acquisition: Acquisition, years: Sequence[int]) -> None:
        from pyproj import Transformer

        self.acquisition = acquisition
        self.years = tuple(years)
        self._to_l93 = Transformer.from_crs(crs, LAMBERT93, always_xy=True)

    def lambert93(self, x: float, y: float) -> tuple[float, float]:
        """A processing-CRS point in Lambert-93."""
        return self._to_l93.transform(x, y)

    def __call__(self, x: float, y: float) -> np.ndarray:
        """float32 (45,) for a tile centred on (x, y); raises InvalidInput for unknown years."""
        a = self.acquisition
        x93, y93 = self.lambert93(x, y)
        return encode_metadata(x93, y93, a.altitude_m, a.camera, a.date, a.time, self.years)


class Sentinel2Inputs:
    """Per-batch U-T&T inputs for `engine.pipeline.run_predict` (an `ExtrasProvider`).

    Args:
        cube: The series loaded for the area (processing CRS).
        work: The run's work grid; tile windows are on it.
        settings: The model's Sentinel-2 settings (options applied).
        metadata: Encoder of the metadata vector, or None when the network has no metadata MLP.
        strict: Whether a tile without a usable date is an error.
        reporter: Where tiles without a usable date are said.
        info: Provenance put in the summary (source, year).
    """

    def __init__(
        self,
        cube: SeriesCube,
        work: Grid,
        settings: Sentinel2Settings,
        metadata: MetadataEncoder | None,
        strict: bool,
        reporter: Reporter,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.cube = cube
        self.work = work
        self.settings = settings
        self.metadata = metadata
        self.info = dict(info or {})
        self.usable = UsableDates("tile", reporter.log, strict, self.info.get("year"))

    def series_for(self, tile: Tile) -> PreparedSeries | None:
        """The prepared series of one tile, None (counted) when no date is usable."""
        x, y = tile_centre(self.work, tile)
        prepared = prepare_superpatch(self.cube.superpatch(x, y), self.settings)
        return self.usable.record(prepared, f"tile {tile.index} (centre {x:.1f}, {y:.1f})")

    def __call__(self, tiles: list[Tile]) -> ExtraInputs:
        """s2 (B,T,10,S,S), dates (B,T) and metadata (B,45) or None for a batch."""
        series = [self.series_for(t) for t in tiles]
        s2, dates = stack_series(series, len(self.settings.bands), self.settings.superpatch_px)
        metadata = None
        if self.metadata is not None:
            metadata = np.stack([self.metadata(*tile_centre(self.work, t)) for t in tiles])
        return ExtraInputs(s2=s2, dates=dates, metadata=metadata)

    def summary(self) -> dict[str, Any]:
        """Figures for the run's statistics (key `sentinel2`), also said in the log."""
        figures = {
            **self.info,
            "dates_in_series": self.cube.num_dates,
            "monthly_average": self.settings.monthly_average,
            **self.usable.summary(),
            "metadata": self.metadata is not None,
        }
        return {"sentinel2": figures}
