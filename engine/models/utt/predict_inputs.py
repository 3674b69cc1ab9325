"""`predict` with a U-T&T model: the Sentinel-2 series of the orthophoto's area, per tile.

`sentinel2_extras` opens the Sentinel-2 source named by `--sentinel2` (nothing is fetched
yet) and returns the pipeline's extras factory; it is the supplier the architecture table names
for the families that take Sentinel-2 (`engine.models.architectures.EXTRA_INPUTS`), so the
pipeline reaches it through the table, never by name. Once the pipeline has loaded the model and
planned the tiles, the factory

1. checks the run (a FLAIR dataset folder serves benchmark patches, not orthophotos; the
   metadata needs an acquisition date in a year the model knows),
2. loads the series once for the area covering every tile centre (phase "sentinel2" of the
   progress; the source adds half a super-patch around it and caches the result),
3. returns a `Sentinel2Inputs` that gives each batch its super-patches and metadata.

A model without Sentinel-2 input given `--sentinel2` runs as usual: the pipeline says the
options are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from engine.errors import InvalidInput
from engine.io.tile_reader import open_raster
from engine.models.extras import ExtrasFactory, RunGeometry, RunModel
from engine.models.utt.inputs import (
    Acquisition,
    MetadataEncoder,
    Sentinel2Inputs,
    acquisition_from_tags,
    centres_bounds,
    tile_centre,
)
from engine.progress import Reporter
from engine.sentinel2.settings import Sentinel2Options, Sentinel2Settings

DEFAULT_CAMERA = "UCE-M3"
"""UltraCam Eagle Mark 3, the camera of most FLAIR images (only "UCE" or not matters)."""

DEFAULT_TIME = "12h00"
DEFAULT_ALTITUDE_M = 0.0


def sentinel2_settings(
    card_settings: Sentinel2Settings | None, run: Sentinel2Options
) -> Sentinel2Settings:
    """The card's Sentinel-2 settings with the run's options applied."""
    base = card_settings or Sentinel2Settings()
    changes: dict = {}
    if run.monthly_average is not None:
        changes["monthly_average"] = run.monthly_average
    if run.cover_threshold is not None:
        changes["cover_threshold"] = run.cover_threshold
    return replace(base, **changes) if changes else base


def resolve_acquisition(
    run: Sentinel2Options, input_name: str, tags: dict[str, str], say: Callable[..., None]
) -> Acquisition:
    """The acquisition from the options, else from the raster's tags, else an error.

    Date: `--acquisition-date`, else the raster's ACQUISITION_DATE / TIFFTAG_DATETIME tag.
    Time: `--acquisition-time`, else the tag's time, else 12h00. Camera: `--camera`, else
    UltraCam Eagle. Altitude: `--altitude`, else 0 m (said as a warning): the elevation
    channel of FLAIR models is a height above ground, not an altitude.

    Raises:
        InvalidInput: No date can be found.
    """
    tag_date, tag_time = acquisition_from_tags(tags)
    if run.acquisition_date:
        date = run.acquisition_date
    elif tag_date is not None:
        date = tag_date
        say(f"acquisition date {date} read from {input_name}'s metadata tags")
    else:
        raise InvalidInput(
            "this U-T&T model uses the aerial acquisition's metadata (date, time, camera, "
            f"altitude) and {input_name} has no ACQUISITION_DATE or TIFFTAG_DATETIME tag: "
            "give --acquisition-date YYYY-MM-DD (and --acquisition-time HHhMM, --altitude M)",
            option="--acquisition-date",
        )
    time = run.acquisition_time or tag_time
    if time is None:
        time = DEFAULT_TIME
        say(f"acquisition time unknown: assuming {time}")
        say("on the command line, --acquisition-time HHhMM gives it", "DEBUG")
    camera = run.camera or DEFAULT_CAMERA
    if run.altitude_m is None:
        say(
            f"ground altitude unknown: assuming {DEFAULT_ALTITUDE_M:g} m in the metadata",
            "WARNING",
            option="--altitude",
        )
        say("on the command line, --altitude M gives it", "DEBUG")
    altitude = DEFAULT_ALTITUDE_M if run.altitude_m is None else float(run.altitude_m)
    return Acquisition(date=date, time=time, camera=camera, altitude_m=altitude)


def _year(run: Sentinel2Options, acquisition: Acquisition | None, say: Callable[..., None]) -> int:
    if run.year is None:
        if acquisition is None:
            raise InvalidInput(
                "give --year YYYY: the year of the Sentinel-2 series (the aerial acquisition's)",
                option="--year",
            )
        say(
            f"Sentinel-2 year {acquisition.date.year}: the acquisition's (give the year to "
            "change it)",
            option="--year",
        )
        return acquisition.date.year
    if acquisition is not None and run.year != acquisition.date.year:
        say(
            f"the Sentinel-2 year {run.year} differs from the acquisition year "
            f"{acquisition.date.year}; FLAIR-2 pairs each image with the Sentinel-2 series of its "
            "own year",
            "WARNING",
            option="--year",
        )
    return run.year


def sentinel2_extras(options: Sentinel2Options, input_path: Path | str) -> ExtrasFactory:
    """The pipeline's extras factory for a model that takes a Sentinel-2 series.

    Opens the source named by `options.source` (nothing is fetched yet, so a wrong name
    fails before the model loads); the factory loads the series once the tiles are planned.

    Args:
        options: The run's Sentinel-2 options: `source` (`stac`, `catalog:PATH`, ...), `year`
            and the acquisition.
        input_path: The orthophoto, whose tags may give the acquisition date.

    Returns:
        A factory whose provider adds a `sentinel2` entry to the run's stats.

    Raises:
        InvalidInput: Unknown source, a FLAIR dataset folder as source, no year or acquisition
            date, a year the model's metadata does not know, or (`--strict`) a tile without a
            usable date.
    """
    from engine.sentinel2 import open_source

    if not options.source:
        raise InvalidInput(
            "this model takes a Sentinel-2 time series: add --sentinel2 (stac, "
            "planetary-computer or catalog:PATH) and --year",
            option="--sentinel2",
        )
    source = open_source(options.source)

    def factory(plan: RunGeometry, loaded: RunModel, rep: Reporter) -> Sentinel2Inputs:
        if source.serves_patches:
            raise InvalidInput(
                f"--sentinel2 {options.source}: a FLAIR dataset folder serves the benchmark's "
                "patches by name (use it with `evaluate`); for an orthophoto give stac, "
                "planetary-computer or catalog:PATH",
                option="--sentinel2",
            )
        s2 = sentinel2_settings(loaded.card.sentinel2, options)
        tiles = list(plan.tiling)
        encoder = None
        acquisition = None
        if loaded.uses_metadata:
            with open_raster(input_path) as src:
                tags = src.tags()
            name = input_path if isinstance(input_path, str) else input_path.name
            acquisition = resolve_acquisition(options, name, tags, rep.log)
            encoder = MetadataEncoder(plan.work.crs, acquisition, s2.metadata_years)
            encoder(*tile_centre(plan.work, tiles[0]))  # a wrong year or time fails here
            rep.log(
                f"metadata: acquired {acquisition.date} {acquisition.time}, camera "
                f"{acquisition.camera}, altitude {acquisition.altitude_m:g} m"
            )
        year = _year(options, acquisition, rep.log)
        crs = plan.work.crs.to_string()
        cube = source.load(crs, centres_bounds(plan.work, tiles), year, s2, rep)
        if rep.phase != "sentinel2":  # read from the cache, or nothing found: no reads
            rep.start("sentinel2", 1, "steps")
            rep.advance(1)
        months = sorted({(d.year, d.month) for d in cube.dates})
        rep.log(
            f"Sentinel-2 {year}: {cube.num_dates} dates over {len(months)} months for "
            f"{len(tiles)} tiles; filter: cloud >= {s2.cloud_threshold} + snow >= "
            f"{s2.snow_threshold} covering {s2.cover_threshold:g} of a super-patch drops a date"
            + ("; monthly means" if s2.monthly_average else "")
        )
        if cube.num_dates == 0 and options.strict:
            raise InvalidInput(
                f"no Sentinel-2 date of {year} over this area in {source.source_id}; "
                "drop --strict to run the aerial branch alone, or choose another year or source",
                option="--strict",
            )
        info = {"source": options.source, "year": year}
        return Sentinel2Inputs(cube, plan.work, s2, encoder, options.strict, rep, info)

    return factory
