"""`predict`: orthophoto in, styled land-cover map out, streamed tile by tile.

The order matters: every destination is claimed and every cheap option checked before the
model loads (or downloads); the tiles stream through the model (`engine.streaming`); then the
map is finished, statistics and polygons are written, and only then is everything committed
together, so a failure or cancel at any phase leaves nothing at the destination.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import rasterio

from engine.device import choose_device
from engine.errors import InvalidInput
from engine.grid import Grid
from engine.inference import Predictor
from engine.io.destination import Destinations
from engine.io.map_writer import MapWriter
from engine.io.tile_reader import TileReader, open_raster
from engine.models.architectures import EXTRA_INPUTS
from engine.models.extras import ExtrasFactory
from engine.models.families import SENTINEL2
from engine.outputs import Finished, claim_outputs, write_outputs
from engine.planning import prepare_run, run_record
from engine.progress import Reporter
from engine.settings import PredictSettings
from engine.stats import class_areas
from engine.streaming import stream_tiles

# A few tiles' blocks; GDAL's default (5 % of RAM) grows with the output. In bytes: rasterio
# passes the value to GDALSetCacheMax64, so a bare 64 meant 64 bytes (blocks written again and
# again, files many times their size).
GDAL_CACHE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class PredictResult:
    """What a run wrote and what it measured."""

    outputs: dict[str, str]
    stats: dict[str, Any]
    run: dict[str, Any] | None = None  # engine.protocol.run_record: what actually ran


def run_predict(
    settings: PredictSettings,
    reporter: Reporter,
    extras_factory: ExtrasFactory | None = None,
    predictor: Predictor | None = None,
) -> PredictResult:
    """Map `settings.input` to a FLAIR land-cover GeoTIFF; see the module docstring.

    GDAL's block cache is capped (it defaults to 5 % of RAM and would grow with the output).
    `predictor`: a model already loaded for these settings (a region's worker loads it once
    for all its blocks); None loads it here.
    """
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), Destinations(settings.overwrite) as dest:
        return _run_predict(settings, reporter, extras_factory, dest, predictor)


def _run_predict(
    settings: PredictSettings,
    reporter: Reporter,
    extras_factory: ExtrasFactory | None,
    destinations: Destinations,
    predictor: Predictor | None = None,
) -> PredictResult:
    claim_outputs(settings, destinations)
    src = open_raster(settings.input)
    try:
        return _predict_open(settings, reporter, extras_factory, destinations, src, predictor)
    finally:
        src.close()


def _predict_open(
    settings: PredictSettings,
    reporter: Reporter,
    extras_factory: ExtrasFactory | None,
    destinations: Destinations,
    src,
    preloaded: Predictor | None = None,
) -> PredictResult:
    # cheap checks first: a typo must not wait for the model to load (or download)
    choose_device(settings.device, settings.precision)
    sentinel2 = None
    if settings.sentinel2.source:  # the source's name is checked now; nothing is fetched yet
        supplier = EXTRA_INPUTS[SENTINEL2]  # the table's supplier for Sentinel-2 families
        sentinel2 = extras_factory or supplier(settings.sentinel2, settings.input)
    ready = prepare_run(
        settings,
        src,
        reporter,
        loaded=preloaded.loaded if preloaded is not None else None,
        has_sentinel2=sentinel2 is not None,
    )
    settings, loaded, scale, plan = ready.settings, ready.loaded, ready.scale, ready.plan
    card = loaded.card
    predictor = preloaded or Predictor(
        loaded, settings.device, settings.threads, settings.precision, settings.backend
    )
    runtime = predictor.runtime_for(plan.tiling.read_shape, reporter)  # engine.runtime
    # where OpenVINO runs, the predictor has let the torch network go: so does this run
    loaded = predictor.loaded
    ready = replace(ready, loaded=loaded)
    choice = predictor.choice
    reporter.log(f"device {choice.device} ({choice.reason}), precision {choice.precision}")
    reporter.log(runtime.describe())
    record = run_record(ready, choice, runtime)
    if scale is not None:
        reporter.log(
            f"input values scaled by {scale:.5f} to the 8-bit range the model was trained on"
        )
    extras_factory = extras_factory or sentinel2
    if loaded.architecture.uses_sentinel2 and extras_factory is None:
        raise InvalidInput(
            f"model {card.name} is {loaded.architecture.title} and needs a Sentinel-2 source: "
            "add --sentinel2 and --year",
            option="--sentinel2",
        )
    if not loaded.architecture.uses_sentinel2 and extras_factory is not None:
        reporter.log(
            f"model {card.name} is {loaded.architecture.title}: the Sentinel-2 options are ignored",
            "WARNING",
        )
        extras_factory = None
    extras_provider = extras_factory(plan, loaded, reporter) if extras_factory else None
    reader = TileReader(src, ready.mapping, plan.processing, ready.same_grid, plan.area, scale)
    probability_codes = card.active_codes if settings.outputs.probabilities else ()
    writer = MapWriter(settings.outputs, plan.output, destinations, probability_codes)
    area_km2 = plan.work.area_m2 / 1e6
    tiling = plan.tiling
    reporter.log(
        f"{len(tiling)} tile{'' if len(tiling) == 1 else 's'} of {tiling.read_shape[1]} px "
        f"(margin {tiling.margin_px} px, "
        f"batch {settings.batch_size}) over {area_km2:.4f} km² "
        f"({plan.work.width} x {plan.work.height} px at {plan.work.res_m:g} m)"
    )
    try:
        stream_tiles(
            settings.batch_size,
            settings.outputs.confidence is not None,
            settings.outputs.probabilities is not None,
            plan,
            reader,
            predictor,
            writer,
            reporter,
            extras_provider,
        )
        reporter.check_cancelled()
        reporter.start("overviews", 1, "steps")
        writer.finish()
        reporter.advance(1)
    finally:
        writer.close()
        reader.close()
    stats = _statistics(writer.counts, plan.output, reporter)
    if extras_provider is not None:
        stats.update(extras_provider.summary())
    outputs = {key: str(path) for key, path in settings.outputs.rasters()}
    outputs["style"] = str(settings.outputs.classes.with_suffix(".qml"))
    finished = Finished(writer.written["output"], plan.output, stats, destinations, reporter)
    outputs.update(write_outputs(settings, finished))
    reporter.check_cancelled()
    destinations.commit()
    return PredictResult(outputs, stats, record)


def _statistics(counts: np.ndarray, output: Grid, reporter: Reporter) -> dict[str, Any]:
    """Class areas over every pixel of the output: pixels never written (tiles no polygon or
    valid pixel reaches) are no data too."""
    counts = counts.copy()
    counts[0] = output.width * output.height - int(counts[1:].sum())
    stats = class_areas(counts, output.res_m**2)
    if stats["mapped_area_m2"] == 0:
        reporter.log(
            "no valid pixel in the area: the map holds no data only (check the nodata value, "
            "the alpha band, the extent or the mask)",
            "WARNING",
        )
        stats["warning"] = "no valid pixel in the area"
    return stats
