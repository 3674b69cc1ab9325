"""Streaming tiles through the model: a reader thread, the model in the calling thread, a
writer thread, joined by small queues, so the device never waits on the disk and the disk never
waits on the device. Memory holds a few tiles whatever the raster's size; any error or
cancellation stops all three.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import numpy as np
from rasterio.windows import Window

from engine.inference import PredictionBatch, Predictor
from engine.io.map_writer import MapWriter
from engine.io.output_grid import OutputGridMapper
from engine.io.tile_reader import TileData, TileReader
from engine.models.extras import ExtrasProvider
from engine.planning import Plan
from engine.progress import Reporter
from engine.tiling import Tile

QUEUE_TILES = 4
_DONE = object()


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


def stream_tiles(
    batch_size: int,
    want_conf: bool,
    want_probs: bool,
    plan: Plan,
    reader: TileReader,
    predictor: Predictor,
    writer: MapWriter,
    reporter: Reporter,
    extras_provider: ExtrasProvider | None,
) -> None:
    tiling = plan.tiling
    px_km2 = plan.work.res_m**2 / 1e6
    reporter.start("inference", len(tiling), "tiles", area_km2=round(plan.work.area_m2 / 1e6, 6))
    stop = threading.Event()
    tiles_in: queue.Queue = queue.Queue(maxsize=QUEUE_TILES + batch_size)
    cores_out: queue.Queue = queue.Queue(maxsize=QUEUE_TILES + batch_size)
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
    done_km2 = 0.0
    sent_done = False

    def skipped(tile: Tile) -> None:
        reporter.advance(1)

    try:
        for batch in _batches(tiles_in, batch_size, skipped):
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
    finally:
        stop.set()
        if not sent_done:
            cores_out.put(_DONE)  # the writer drains its queue until it sees this
        read_thread.join(timeout=5)
        write_thread.join()
