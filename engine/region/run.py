"""The order of a region run: checks, inputs, geometry, manifest, blocks on the cluster, outputs.

Everything cheap comes first, and every check before anything is written: every input file is
opened and matched, the mask is read against the mosaic's footprint, an external scheduler is
reached, the model is loaded and hashed, and the manifest is read and compared (the model by
content), before the model is checked against the mosaic's bands and the grid and its blocks
are fixed. A run that stops before its first block leaves the folder as it found it. Blocks
then run as Dask tasks; each one that ends is recorded in the manifest at once. At the end the
region's outputs are built from the finished blocks; blocks that failed are listed and the run
ends non-zero.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import rasterio
from rasterio.warp import transform_bounds

from engine.area import area_from_polygons
from engine.device import choose_device
from engine.errors import Cancelled, InvalidInput, OutputError, RegionError
from engine.failures import write_failure
from engine.grid import Bounds
from engine.inference import runtime_of
from engine.io.bands import RasterBand
from engine.io.destination import Destinations, OutputPaths
from engine.io.tile_reader import open_raster
from engine.models.loader import LoadedModel
from engine.pipeline import GDAL_CACHE_BYTES
from engine.planning import Plan, Prepared, load_run_model, prepare_run, run_record
from engine.progress import Reporter
from engine.region.blocks import Block, cut, reaches
from engine.region.cluster import (
    death_reason,
    local_size,
    open_client,
    scheduler_lost,
    workers_alive,
)
from engine.region.identity import open_manifest
from engine.region.inputs import RegionInputs, gather
from engine.region.manifest import (
    BLOCKS_DIR,
    DONE,
    FAILED,
    SKIPPED,
    BlockRecord,
    Manifest,
    cancel_message,
)
from engine.region.mosaic import INPUTS_DIR, write_input_mosaics
from engine.region.outputs import (
    OutputFolder,
    retire_region_outputs,
    sweep_leftovers,
    write_region_outputs,
)
from engine.region.products import ELEVATION, PRODUCTS, elevation_product
from engine.region.settings import RegionSettings
from engine.region.vrt import grid_of
from engine.region.worker import BlockJob, compute_block, forward_warnings
from engine.settings import PredictSettings, RunOptions

RUN_RECORD = "run.json"
POLL_S = 0.1


@dataclass
class RunFigures:
    """What the run measured, for the user and the benchmark."""

    computed: int = 0
    failed: int = 0
    worker_seconds: float = 0.0
    manifest_seconds: float = 0.0
    wall_seconds: float = 0.0


def run_region(settings: RegionSettings, reporter: Reporter) -> dict[str, Any]:
    """Map the region; returns the `done` event's outputs and statistics.

    A run that stops before its first block is submitted (a failed check, a cancel) removes
    what it made in the folder (the folder itself, `inputs/`, `blocks/`, a first manifest): the
    folder is left as it was found. From the first block on, finished blocks are kept for the
    next run, and a cancel says how many (`Cancelled`'s message).
    """
    made = OutputFolder.open(settings.out_dir)
    try:
        return _run(settings, made, reporter)
    except (Cancelled, KeyboardInterrupt):
        made.undo()
        raise Cancelled(cancel_message(made.path)) from None
    except BaseException:
        made.undo()
        raise
    finally:
        if not settings.cluster.scheduler:  # the local workers are gone, killed or not
            sweep_leftovers(made.path / BLOCKS_DIR)


def _run(settings: RegionSettings, made: OutputFolder, reporter: Reporter) -> dict[str, Any]:
    out_dir = made.path
    with Destinations(overwrite=True) as lock:  # one run per folder at a time
        record_file = lock.claim(out_dir / RUN_RECORD, "region run record", (".json",))
        zones = settings.zones.read() if settings.zones else None  # every check before any work
        inputs = gather(settings.inputs)
        reporter.log(_describe(inputs))
        for note in inputs.notes:  # accepted, but the user should know (links, copies)
            reporter.log(note, "WARNING")
        if settings.mask:  # there, polygons, over the mosaic: checked before the model loads
            area_from_polygons(grid_of(inputs.footprints), settings.mask)
        with contextlib.ExitStack() as cluster:
            client = None
            if settings.cluster.scheduler:  # reached before the model loads, kept for the run
                client = cluster.enter_context(open_client(settings.cluster, reporter))
            loaded = _load(settings.run, reporter)
            manifest = open_manifest(settings, out_dir, inputs, loaded, reporter)
            reporter.check_cancelled()
            made.expect(out_dir / INPUTS_DIR)
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
                mosaic, elevation = write_input_mosaics(out_dir, inputs)
                base = _base_settings(settings, out_dir, mosaic, elevation)
                ready = _geometry(base, reporter, loaded)
                plan = ready.plan
                # what the blocks run, as the coordinator chose it (the run record of `done`)
                record = run_record(
                    ready,
                    choose_device(base.device, base.precision),
                    # asked once here, before any worker: a conversion to OpenVINO happens
                    # once, in this run's log, and the workers load it from the cache
                    runtime_of(ready.loaded, base, ready.plan.tiling.read_shape, reporter),
                )
            blocks = cut(plan.area.window, plan.tiling, settings.block_px)
            made.expect(manifest.path)
            described = manifest.done()
            todo = _blocks_left(blocks, manifest, plan, inputs, out_dir, reporter)
            reporter.check_cancelled()  # a stop until here leaves the folder's outputs whole
            if settings.restart or todo or manifest.done() != described:
                _retire_outputs(settings, out_dir, reporter)  # before the manifest changes
            manifest.save()
            figures = RunFigures()
            started = time.perf_counter()
            if todo:
                made.expect(out_dir / BLOCKS_DIR)
                (out_dir / BLOCKS_DIR).mkdir(exist_ok=True)
                _run_blocks(todo, base, settings, plan, manifest, figures, reporter, client, made)
            figures.wall_seconds = time.perf_counter() - started
        reporter.check_cancelled()
        outputs = write_region_outputs(
            out_dir,
            plan.work,
            plan.area.window,
            blocks,
            manifest.blocks,
            settings.polygons,
            reporter,
            (settings.zones, zones) if settings.zones else None,
        )
        stats = _summary(blocks, manifest, figures, plan)
        record_file.write_text(json.dumps(stats, indent=1))
        lock.commit()
    failed = [
        b
        for b in blocks
        if manifest.blocks.get(b.id, None) and manifest.blocks[b.id].state == FAILED
    ]
    if failed:
        lines = "; ".join(f"{b.id}: {manifest.blocks[b.id].reason}" for b in failed[:5])
        raise RegionError(
            f"{len(failed)} of {len(blocks)} block(s) failed ({lines}); the others are mapped in "
            f"{outputs['output']}; rerun the same command to retry the failed ones"
        )
    outputs["manifest"] = str(manifest.path)
    return {"outputs": outputs, "stats": stats, "run": record}


def _retire_outputs(settings: RegionSettings, out_dir: Path, reporter: Reporter) -> None:
    """Remove the folder's map, statistics, polygons, zone table and run record, which describe
    the blocks done so far, before the manifest changes them: whatever stops the run, the
    outputs present never claim blocks the manifest does not count as done, or miss some. They
    are written again at the end of the run."""
    zones = (settings.zones.out, settings.zones.csv) if settings.zones else ()
    removed = retire_region_outputs(out_dir, (out_dir / RUN_RECORD, *zones))
    if removed:
        why = "--restart" if settings.restart else "blocks to map"
        reporter.log(f"{why}: removed the earlier {', '.join(removed)} (written again at the end)")


def _describe(inputs: RegionInputs) -> str:
    if inputs.single:
        return f"input {inputs.single.path}" + "".join(
            f", {len(inputs.of(p.key))} {p.name} file(s)"
            for p in PRODUCTS
            if p.role == ELEVATION and inputs.of(p.key)
        )
    counts = [f"{len(inputs.of(p.key))} {p.name} file(s)" for p in PRODUCTS if inputs.of(p.key)]
    return "inputs: " + ", ".join(counts)


def _base_settings(
    settings: RegionSettings, out_dir: Path, mosaic: str, elevation: str | None
) -> PredictSettings:
    """The `predict` settings every block shares (its window and outputs are set per block)."""
    cluster = settings.cluster
    threads = (
        cluster.threads_per_worker if cluster.scheduler else local_size(cluster).threads_per_worker
    )
    return replace(
        settings.block_settings(mosaic),
        outputs=OutputPaths(out_dir / BLOCKS_DIR / "block.tif"),
        elevation=RasterBand(elevation, elevation_product().bands[0].band) if elevation else None,
        threads=threads,
    )


def _load(run: RunOptions, reporter: Reporter) -> LoadedModel:
    """The model, loaded once here to check it before any worker starts."""
    loaded = load_run_model(run, reporter)
    if loaded.architecture.uses_sentinel2:
        raise InvalidInput(
            f"model {loaded.card.name} ({loaded.architecture.title}) needs a Sentinel-2 series "
            "per tile; region runs take aerial-only models: use predict for it"
        )
    return loaded


def _geometry(
    base: PredictSettings, reporter: Reporter, loaded: LoadedModel | None = None
) -> Prepared:
    """The whole region's plan: `predict`'s own planning step on the mosaic (the model, loaded
    here when not given, checked against the mosaic's bands; the grid, area and tiling)."""
    loaded = loaded or _load(base.run_options, reporter)
    src = open_raster(base.input)
    try:
        return prepare_run(base, src, reporter, loaded=loaded)
    finally:
        src.close()


def _footprints(inputs: RegionInputs, plan: Plan) -> list[Bounds]:
    crs = plan.processing.crs
    return [
        f.bounds if f.crs == crs else tuple(transform_bounds(f.crs, crs, *f.bounds))
        for f in inputs.footprints
    ]


def _blocks_left(
    blocks: list[Block],
    manifest: Manifest,
    plan: Plan,
    inputs: RegionInputs,
    out_dir: Path,
    reporter: Reporter,
) -> list[Block]:
    """Blocks still to map: not skipped, not finished with intact outputs (their records
    are dropped from the manifest, skipped blocks recorded; the caller saves it)."""
    footprints = _footprints(inputs, plan)
    todo: list[Block] = []
    kept = skipped = 0
    for block in blocks:
        record = manifest.blocks.get(block.id)
        if record is not None and record.window == block.window and record.intact(out_dir):
            kept += 1
            continue
        if not reaches(block, plan.processing, plan.area, footprints):
            manifest.blocks[block.id] = BlockRecord(block.id, block.window, SKIPPED, manifest.runs)
            skipped += 1
            continue
        manifest.blocks.pop(block.id, None)
        todo.append(block)
    reporter.log(
        f"{len(blocks)} block(s) of up to {max(b.width for b in blocks)} px over "
        f"{plan.work.area_m2 / 1e6:.4f} km² ({plan.work.width} x {plan.work.height} px): "
        f"{kept} already done, {skipped} without data, {len(todo)} to map (run {manifest.runs})"
    )
    return todo


def _job(base: PredictSettings, block: Block, out_dir: Path, settings: RegionSettings) -> BlockJob:
    stem = f"{BLOCKS_DIR}/{block.id}"
    files = [("output", f"{stem}.tif")]
    if settings.confidence:
        files.append(("confidence", f"{stem}_confidence.tif"))
    files.append(("stats", f"{stem}.json"))
    if settings.polygons:
        files.append(("polygons", f"{stem}.gpkg"))
    paths = {kind: out_dir / rel for kind, rel in files}
    block_settings = replace(
        base,
        outputs=OutputPaths(paths["output"], paths.get("confidence")),
        stats=paths["stats"],
        polygons=paths.get("polygons"),
        window=block.window,
    )
    return BlockJob(block.id, block_settings, out_dir, tuple(files))


def _run_blocks(
    todo: list[Block],
    base: PredictSettings,
    settings: RegionSettings,
    plan: Plan,
    manifest: Manifest,
    figures: RunFigures,
    reporter: Reporter,
    client: Any | None,
    made: OutputFolder,
) -> None:
    """Submit every block (on `client`, else on a local cluster started here and closed on
    the way out), record each one as it ends; stop all on cancel, and on a fault every block
    would meet (the scheduler lost, the outputs or the manifest not written): RegionError."""
    from distributed import as_completed

    out_dir = made.path
    px_km2 = plan.work.res_m**2 / 1e6
    total_km2 = sum(b.pixels for b in todo) * px_km2
    tag = uuid.uuid4().hex[:8]
    with contextlib.ExitStack() as local:
        if client is None:
            client = local.enter_context(open_client(settings.cluster, reporter))
        made.keep()  # blocks run from here: what they finish stays for the next run
        futures = {
            client.submit(
                compute_block,
                _job(base, b, out_dir, settings),
                key=f"flair-{b.id}-{tag}",
                retries=settings.cluster.retries,
                pure=False,
            ): b
            for b in todo
        }
        reporter.start(
            "region",
            len(todo),
            "blocks",
            area_km2=round(total_km2, 4),
            workers=workers_alive(client),
        )
        done_km2 = 0.0
        pending = as_completed(list(futures), raise_errors=False)
        try:
            while not pending.is_empty():
                reporter.check_cancelled()
                batch = pending.next_batch(block=False)
                if not batch:
                    time.sleep(POLL_S)
                    continue
                for future in batch:
                    block = futures[future]
                    if scheduler_lost(future):  # every block still out is cancelled with it
                        lost = f"lost the Dask scheduler {settings.cluster.scheduler} mid-run"
                        fix = "start it again (or leave out --scheduler for local workers)"
                        raise _stopped(lost, manifest, fix)
                    record, fault = _record_of(future, block, manifest.runs, client)
                    if future.status == "finished":  # what the block warned of, said here
                        forward_warnings(future.result(), block.id, reporter)
                    t0 = time.perf_counter()
                    try:
                        manifest.record(record)
                    except OutputError as exc:  # the previous manifest stays, whole
                        manifest.blocks.pop(block.id)
                        cause = write_failure(exc.__context__ or exc, manifest.path)
                        unsaved = f"{cause} (block {block.id} {record.state}, not recorded)"
                        raise _stopped(unsaved, manifest, "fix that") from None
                    # recorded: released, so a worker dying with its result in memory does not
                    # have the scheduler compute it again, rewriting the files just recorded
                    del futures[future]
                    future.release()
                    figures.manifest_seconds += time.perf_counter() - t0
                    figures.worker_seconds += record.seconds
                    if record.state == DONE:
                        figures.computed += 1
                        reporter.log(
                            f"block {block.id} done in {record.seconds:.1f} s on {record.worker}"
                        )
                    else:
                        figures.failed += 1
                        reporter.log(f"block {block.id} failed: {record.reason}", "WARNING")
                    done_km2 += block.pixels * px_km2
                    reporter.advance(
                        1,
                        km2_done=round(done_km2, 4),
                        workers_alive=workers_alive(client),
                        failed=figures.failed,
                    )
                    if fault:  # a full disk, say: every other block would fail the same
                        unwritten = f"block {block.id} could not be written: {record.reason}"
                        raise _stopped(unwritten, manifest, "fix that")
        except (Cancelled, KeyboardInterrupt, RegionError):
            if client.status == "running":  # a lost scheduler has cancelled them all
                client.cancel(list(futures), force=True)
            raise


def _stopped(cause: str, manifest: Manifest, fix: str) -> RegionError:
    """The run stops at a fault every block would meet; the blocks done are kept."""
    done = sum(r.state == DONE for r in manifest.blocks.values())
    return RegionError(
        f"{cause}; the run stopped, keeping the {done} block(s) done: {fix}, then rerun the "
        "same command to map the rest"
    )


def _record_of(future: Any, block: Block, run: int, client: Any) -> tuple[BlockRecord, str]:
    """The manifest record of a finished, failed or lost block, and its fault (`output`: its
    outputs could not be written, nor will the other blocks')."""
    if future.status == "finished":
        result = future.result()
        record = BlockRecord(
            block.id,
            block.window,
            result["state"],
            run,
            outputs=result.get("outputs", {}),
            counts=tuple(result.get("counts", ())),
            reason=result.get("reason", ""),
            seconds=result.get("seconds", 0.0),
            worker=result.get("worker", ""),
        )
        return record, result.get("fault", "")
    exc = future.exception()
    reason = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ == "KilledWorker":
        reason = death_reason(client, exc)
    return BlockRecord(block.id, block.window, FAILED, run, reason=reason), ""


def _summary(
    blocks: list[Block], manifest: Manifest, figures: RunFigures, plan: Plan
) -> dict[str, Any]:
    states = [manifest.blocks[b.id].state if b.id in manifest.blocks else "pending" for b in blocks]
    return {
        "run": manifest.runs,
        "blocks": {s: states.count(s) for s in (DONE, FAILED, SKIPPED, "pending")},
        "computed_this_run": figures.computed,
        "failed_this_run": figures.failed,
        "area_km2": round(plan.work.area_m2 / 1e6, 6),
        "wall_seconds": round(figures.wall_seconds, 3),
        "worker_seconds": round(figures.worker_seconds, 3),
        "manifest_seconds": round(figures.manifest_seconds, 4),
    }
