"""`predict`: orthophoto in, styled land-cover map out, streamed tile by tile.

A reader thread reads tiles into a small queue, the calling thread batches them through the
model, and a writer thread puts each core into the output, so the device never waits on the
disk and the disk never waits on the device. Memory holds a few tiles, whatever the raster's
size. Any error or cancellation stops all three and leaves nothing at the destination.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import rasterio
from rasterio.windows import Window

from engine.area import Area, area_from_extent, area_from_polygons, parse_extent, whole_grid
from engine.errors import InvalidInput
from engine.grid import Grid
from engine.inference import PredictionBatch, Predictor
from engine.io.bands import parse_elevation, resolve_bands
from engine.io.destination import check_destination
from engine.io.map_writer import RASTER_SUFFIXES, MapWriter
from engine.io.output_grid import OutputGridMapper
from engine.io.tile_reader import TileData, TileReader, open_raster, value_scale_for
from engine.models.loader import LoadedModel, load_model
from engine.polygons import POLYGON_DRIVERS, polygonize
from engine.processing_grid import choose_processing_grid
from engine.progress import Reporter
from engine.settings import DEFAULT_MARGIN_PX, DEFAULT_TILE_SIZE_PX, PredictSettings
from engine.stats import STATS_SUFFIXES, class_areas, write_stats
from engine.tiling import Tile, Tiling

log = logging.getLogger(__name__)

QUEUE_TILES = 4
GDAL_CACHE_MB = 64  # a few tiles' blocks; GDAL's default (5 % of RAM) grows with the output
_DONE = object()


class ExtrasProvider(Protocol):
    """Extra model inputs per batch (U-T&T's Sentinel-2 series and metadata).

    Called with the batch's tiles, whose windows are on `plan.work`; returns keyword inputs
    for the network (arrays with the batch first). `summary` adds figures to the run's stats.
    """

    def __call__(self, tiles: list[Tile]) -> dict[str, Any]: ...

    def summary(self) -> dict[str, Any]: ...


# Builds the provider once the geometry is known (loads the Sentinel-2 series for the area).
ExtrasFactory = Callable[["Plan", LoadedModel, Reporter], ExtrasProvider]


@dataclass(frozen=True)
class PredictResult:
    """What a run wrote and what it measured."""

    outputs: dict[str, str]
    stats: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """The geometry of a run, fixed before any tile is read."""

    processing: Grid  # the whole processing grid of the raster
    area: Area  # the part of it to compute
    work: Grid  # the area's own grid
    output: Grid  # the grid the map is written on
    tiling: Tiling


def _plan(
    settings: PredictSettings, loaded: LoadedModel, src, reporter: Reporter
) -> tuple[Plan, bool]:
    card = loaded.card
    src_grid = Grid(src.crs, src.transform, src.width, src.height) if src.crs else None
    if src_grid is None or src.transform.b or src.transform.d:
        raise InvalidInput(
            f"{settings.input} has no CRS or a rotated grid; assign a CRS / warp it north-up first"
        )
    chosen = choose_processing_grid(src.crs, src_grid, card.res_m)
    reporter.log(chosen.reason)
    grid = chosen.grid
    if settings.mask:
        area = area_from_polygons(grid, settings.mask)
    elif settings.extent:
        area = area_from_extent(grid, *parse_extent(settings.extent, src.crs))
    else:
        area = whole_grid(grid)
    work = grid.subgrid(area.window)
    if settings.output_resolution == "input":
        if grid.crs != src.crs:
            raise InvalidInput(
                "--output-resolution input needs a projected input in metres; this input is "
                f"processed in {grid.crs.to_string()}: keep the default model resolution"
            )
        output = src_grid.subgrid(src_grid.clip(src_grid.window_of(work.bounds)))
    else:
        output = work
    if card.architecture == "utt":
        tile = settings.tile_size_px or card.tile_size_px
        if tile != card.tile_size_px:
            raise InvalidInput(
                f"U-T&T runs on {card.tile_size_px} px tiles only (its fusion is tied to that size)"
            )
        margin = settings.margin_px if settings.margin_px is not None else DEFAULT_MARGIN_PX
    else:
        tile = settings.tile_size_px or DEFAULT_TILE_SIZE_PX
        margin = settings.margin_px if settings.margin_px is not None else DEFAULT_MARGIN_PX
    tiling = Tiling(work.height, work.width, tile, margin, fixed_size=card.architecture == "utt")
    return Plan(grid, area, work, output, tiling), chosen.same_as_source


def _read_tiles(reader: TileReader, plan: Plan, out: queue.Queue, stop: threading.Event) -> None:
    """Reader thread: every tile's data, or None for tiles with nothing valid in their core."""
    try:
        offset_r, offset_c = int(plan.area.window.row_off), int(plan.area.window.col_off)
        for tile in plan.tiling:
            if stop.is_set():
                return
            c = tile.core
            core = Window(c.col_off + offset_c, c.row_off + offset_r, c.width, c.height)
            if not plan.area.touches(plan.processing, core):  # outside the polygons: no read
                _put(out, (tile, None), stop)
                continue
            w = tile.read
            data = reader.read(
                Window(w.col_off + offset_c, w.row_off + offset_r, w.width, w.height)
            )
            rows, cols = tile.core_in_read
            useful = bool(data.valid[rows, cols].any())
            _put(out, (tile, data if useful else None), stop)
        _put(out, _DONE, stop)
    except BaseException as exc:  # handed to the main thread, which re-raises it
        _put(out, exc, stop)


def _write_cores(
    writer: MapWriter, mapper: OutputGridMapper, inbox: queue.Queue, failure: list[BaseException]
) -> None:
    """Writer thread: place each finished core into the outputs."""
    try:
        while (item := inbox.get()) is not _DONE:
            tile, codes, conf, probs = item
            placement = mapper.place(tile.core)
            if placement is None:
                continue
            writer.write(
                placement.window,
                placement.take(codes),
                None if conf is None else placement.take(conf),
                None if probs is None else placement.take(probs),
            )
    except BaseException as exc:
        failure.append(exc)
        while inbox.get() is not _DONE:
            pass


def _put(q: queue.Queue, item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


def _batches(
    source: queue.Queue, size: int, on_empty: Callable[[Tile], None]
) -> Iterator[list[tuple[Tile, TileData]]]:
    batch: list[tuple[Tile, TileData]] = []
    while True:
        item = source.get()
        if item is _DONE:
            break
        if isinstance(item, BaseException):
            raise item
        tile, data = item
        if data is None:
            on_empty(tile)
            continue
        batch.append((tile, data))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_predict(
    settings: PredictSettings, reporter: Reporter, extras_factory: ExtrasFactory | None = None
) -> PredictResult:
    """Map `settings.input` to a FLAIR land-cover GeoTIFF; see the module docstring.

    GDAL's block cache is capped (it defaults to 5 % of RAM and would grow with the output).
    """
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        return _run_predict(settings, reporter, extras_factory)


def _run_predict(
    settings: PredictSettings, reporter: Reporter, extras_factory: ExtrasFactory | None
) -> PredictResult:
    for _, path in settings.outputs.rasters():
        check_destination(path, settings.overwrite, RASTER_SUFFIXES, "raster output")
    if settings.stats:
        check_destination(settings.stats, settings.overwrite, STATS_SUFFIXES, "--stats output")
    if settings.polygons:
        check_destination(
            settings.polygons, settings.overwrite, POLYGON_DRIVERS, "--polygons output"
        )
    src = open_raster(settings.input)
    loaded = load_model(
        settings.model,
        card_path=settings.card_path,
        overrides=settings.overrides,
        allow_download=settings.allow_download,
        say=reporter.log,
    )
    card = loaded.card
    mapping = resolve_bands(
        card.channels,
        src.count,
        tuple(src.colorinterp),
        settings.bands,
        parse_elevation(settings.elevation),
        card.name,
    )
    scale = value_scale_for(src, mapping.ortho_bands, settings.input_max)
    plan, same = _plan(settings, loaded, src, reporter)
    predictor = Predictor(loaded, settings.device, settings.threads, settings.precision)
    reporter.log(
        f"model {card.name} ({card.architecture}, {','.join(card.channels)}): {mapping.describe()}"
    )
    choice = predictor.choice
    reporter.log(f"device {choice.device} ({choice.reason}), precision {choice.precision}")
    if scale is not None:
        reporter.log(
            f"input values scaled by {scale:.5f} to the 8-bit range the model was trained on"
        )
    if card.architecture == "utt" and extras_factory is None:
        raise InvalidInput("a U-T&T model needs a Sentinel-2 source: add --sentinel2 and --year")
    if card.architecture != "utt" and extras_factory is not None:
        reporter.log(f"model {card.name} is a U-Net: the Sentinel-2 options are ignored", "WARNING")
        extras_factory = None
    extras_provider = extras_factory(plan, loaded, reporter) if extras_factory else None
    reader = TileReader(src, mapping, plan.processing, same, plan.area, scale)
    probability_codes = card.active_codes if settings.outputs.probabilities else ()
    writer = MapWriter(settings.outputs, plan.output, probability_codes, settings.overwrite)
    area_km2 = plan.work.area_m2 / 1e6
    tiling = plan.tiling
    reporter.log(
        f"{len(tiling)} tiles of {tiling.read_shape[1]} px (margin {tiling.margin_px} px, "
        f"batch {settings.batch_size}) over {area_km2:.4f} km2 "
        f"({plan.work.width} x {plan.work.height} px at {plan.work.res_m:g} m)"
    )
    try:
        outputs = _stream(settings, plan, reader, predictor, writer, reporter, extras_provider)
    except BaseException:
        writer.abort()
        raise
    finally:
        reader.close()
        src.close()
    stats = class_areas(writer.counts, plan.output.res_m**2)
    if extras_provider is not None:
        stats.update(extras_provider.summary())
    if settings.stats:
        write_stats(stats, settings.stats)
        outputs["stats"] = str(settings.stats)
    if settings.polygons:
        reporter.log("building polygons")
        count = polygonize(settings.outputs.classes, settings.polygons)
        outputs["polygons"] = str(settings.polygons)
        stats["polygons"] = count
    return PredictResult(outputs, stats)


def _stream(
    settings: PredictSettings,
    plan: Plan,
    reader: TileReader,
    predictor: Predictor,
    writer: MapWriter,
    reporter: Reporter,
    extras_provider: ExtrasProvider | None,
) -> dict[str, str]:
    tiling = plan.tiling
    px_km2 = plan.work.res_m**2 / 1e6
    reporter.start("inference", len(tiling), "tiles", area_km2=round(plan.work.area_m2 / 1e6, 6))
    stop = threading.Event()
    tiles_in: queue.Queue = queue.Queue(maxsize=QUEUE_TILES + settings.batch_size)
    cores_out: queue.Queue = queue.Queue(maxsize=QUEUE_TILES + settings.batch_size)
    failure: list[BaseException] = []
    read_thread = threading.Thread(
        target=_read_tiles, args=(reader, plan, tiles_in, stop), daemon=True
    )
    write_thread = threading.Thread(
        target=_write_cores,
        args=(writer, OutputGridMapper(plan.work, plan.output), cores_out, failure),
        daemon=True,
    )
    read_thread.start()
    write_thread.start()
    want_conf = settings.outputs.confidence is not None
    want_probs = settings.outputs.probabilities is not None
    done_km2 = 0.0
    sent_done = False

    def skipped(tile: Tile) -> None:
        reporter.advance(1)

    try:
        for batch in _batches(tiles_in, settings.batch_size, skipped):
            reporter.check_cancelled()
            if failure:
                raise failure[0]
            images = np.stack([data.image for _, data in batch])
            extras = None
            if extras_provider is not None:
                extras = extras_provider([t for t, _ in batch])
            result: PredictionBatch = predictor.predict(images, extras, want_conf, want_probs)
            for i, (tile, data) in enumerate(batch):
                rows, cols = tile.core_in_read
                valid = data.valid[rows, cols]
                codes = np.where(valid, result.codes[i][rows, cols], 0).astype(np.uint8)
                conf = (
                    None
                    if result.confidence is None
                    else np.where(valid, result.confidence[i][rows, cols], 0).astype(np.uint8)
                )
                probs = (
                    None
                    if result.probabilities is None
                    else np.where(valid, result.probabilities[i][:, rows, cols], 0).astype(np.uint8)
                )
                _put(cores_out, (tile, codes, conf, probs), stop)
            done_km2 += sum(t.core.width * t.core.height for t, _ in batch) * px_km2
            reporter.advance(len(batch), km2_done=round(done_km2, 4))
        cores_out.put(_DONE)
        sent_done = True
        write_thread.join()
        if failure:
            raise failure[0]
        reporter.check_cancelled()
        reporter.start("finishing", 1, "steps")
        outputs = writer.commit()
        reporter.advance(1)
        return outputs
    finally:
        stop.set()
        if not sent_done:
            cores_out.put(_DONE)  # the writer drains its queue until it sees this
        read_thread.join(timeout=5)
        write_thread.join()
