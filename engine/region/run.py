"""The order of a region run: inputs, geometry, manifest, blocks on the cluster, outputs.

Everything cheap comes first: every input file is opened and matched, the model is loaded and
checked against the mosaic's bands, the grid and its blocks are fixed, and the manifest decides
which blocks are left, all before a cluster starts. Blocks then run as Dask tasks; each one
that ends is recorded in the manifest at once. At the end the region's outputs are built from
the finished blocks; blocks that failed are listed and the run ends non-zero.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import rasterio
from rasterio.warp import transform_bounds

from engine.errors import Cancelled, InvalidInput, OutputError, RegionError
from engine.grid import Bounds
from engine.io.bands import RasterBand, resolve_raster_bands
from engine.io.destination import Destinations, OutputPaths
from engine.io.tile_reader import open_raster
from engine.models.loader import load_model
from engine.pipeline import GDAL_CACHE_BYTES
from engine.planning import Plan, plan_run
from engine.progress import Reporter
from engine.region.blocks import Block, cut, reaches
from engine.region.cluster import local_size, open_client, workers_alive
from engine.region.inputs import RegionInputs, gather
from engine.region.manifest import DONE, FAILED, SKIPPED, BlockRecord, Manifest
from engine.region.mosaic import write_input_mosaics
from engine.region.outputs import write_region_outputs
from engine.region.settings import RegionSettings
from engine.region.worker import BlockJob, compute_block
from engine.settings import PredictSettings

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
    """Map the region; returns the `done` event's outputs and statistics."""
    out_dir = _output_folder(settings.out_dir)
    with Destinations(overwrite=True) as lock:  # one run per folder at a time
        run_record = lock.claim(out_dir / RUN_RECORD, "region run record", (".json",))
        zones = settings.zones.read() if settings.zones else None  # before any work
        inputs = gather(settings.inputs)
        reporter.log(_describe(inputs))
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            mosaic, elevation = write_input_mosaics(out_dir, inputs)
            base = _base_settings(settings, out_dir, mosaic, elevation)
            plan = _geometry(base, reporter)
        blocks = cut(plan.area.window, plan.tiling, settings.block_px)
        manifest = Manifest.open(out_dir, settings.result_key(inputs.describe()), settings.restart)
        todo = _blocks_left(blocks, manifest, plan, inputs, out_dir, reporter)
        figures = RunFigures()
        started = time.perf_counter()
        if todo:
            _run_blocks(todo, base, settings, out_dir, plan, manifest, figures, reporter)
        figures.wall_seconds = time.perf_counter() - started
        reporter.check_cancelled()
        outputs = write_region_outputs(
            out_dir,
            plan.work,
            (int(plan.area.window.row_off), int(plan.area.window.col_off)),
            blocks,
            manifest.blocks,
            settings.polygons,
            reporter,
            (settings.zones, zones) if settings.zones else None,
        )
        stats = _summary(blocks, manifest, figures, plan)
        run_record.write_text(json.dumps(stats, indent=1))
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
    return {"outputs": outputs, "stats": stats}


def _output_folder(path: Path) -> Path:
    path = Path(path).absolute()
    if path.is_file():
        raise OutputError(f"{path} is a file; the region's output is a folder")
    if not path.parent.is_dir():
        raise OutputError(f"folder {path.parent} does not exist; create it first")
    (path / "blocks").mkdir(parents=True, exist_ok=True)
    return path


def _describe(inputs: RegionInputs) -> str:
    if inputs.single:
        text = f"input {inputs.single.path}"
    else:
        text = f"inputs: {len(inputs.rgb)} RVB file(s)" + (
            f", {len(inputs.irc)} IRC file(s)" if inputs.irc else ""
        )
    return text + (f", {len(inputs.elevation)} elevation file(s)" if inputs.elevation else "")


def _base_settings(
    settings: RegionSettings, out_dir: Path, mosaic: str, elevation: str | None
) -> PredictSettings:
    """The `predict` settings every block shares (its window and outputs are set per block)."""
    cluster = settings.cluster
    threads = (
        cluster.threads_per_worker if cluster.scheduler else local_size(cluster).threads_per_worker
    )
    return PredictSettings(
        input=mosaic,
        outputs=OutputPaths(out_dir / "blocks" / "block.tif"),
        model=settings.model,
        card_path=settings.card_path,
        overrides=settings.overrides,
        bands=settings.bands,
        elevation=RasterBand(elevation, 1) if elevation else None,
        mask=settings.mask,
        device=settings.device,
        precision=settings.precision,
        threads=threads,
        tile_size_px=settings.tile_size_px,
        margin_px=settings.margin_px,
        batch_size=settings.batch_size,
        input_max=settings.input_max,
        overwrite=True,  # a block's files are the region's own; a retry replaces a torn one
        allow_download=settings.allow_download,
    )


def _geometry(base: PredictSettings, reporter: Reporter) -> Plan:
    """The whole region's plan, exactly as `predict` would make it on the mosaic; the model is
    loaded here once to check it against the mosaic's bands before any worker starts."""
    src = open_raster(base.input)
    try:
        loaded = load_model(
            base.model,
            card_path=base.card_path,
            overrides=base.overrides,
            allow_download=base.allow_download,
            say=reporter.log,
        )
        card = loaded.card
        if loaded.architecture.uses_sentinel2:
            raise InvalidInput(
                f"model {card.name} ({loaded.architecture.title}) needs a Sentinel-2 series per "
                "tile; region runs take aerial-only models: use predict for it"
            )
        mapping = resolve_raster_bands(src, card.channels, base.bands, base.elevation, card.name)
        reporter.log(f"model {card.name} ({','.join(card.channels)}): {mapping.describe()}")
        plan, _ = plan_run(base, loaded, src, reporter)
    finally:
        src.close()
    return plan


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
    """Blocks still to map: not skipped, not finished with intact outputs."""
    footprints = _footprints(inputs, plan)
    todo: list[Block] = []
    kept = skipped = 0
    for block in blocks:
        record = manifest.blocks.get(block.id)
        if record is not None and record.window == block.as_tuple and record.intact(out_dir):
            kept += 1
            continue
        if not reaches(block, plan.processing, plan.area, footprints):
            manifest.blocks[block.id] = BlockRecord(
                block.id, block.as_tuple, SKIPPED, manifest.runs
            )
            skipped += 1
            continue
        manifest.blocks.pop(block.id, None)
        todo.append(block)
    manifest.save()
    reporter.log(
        f"{len(blocks)} block(s) of up to {max(b.width for b in blocks)} px over "
        f"{plan.work.area_m2 / 1e6:.4f} km2 ({plan.work.width} x {plan.work.height} px): "
        f"{kept} already done, {skipped} without data, {len(todo)} to map (run {manifest.runs})"
    )
    return todo


def _job(base: PredictSettings, block: Block, out_dir: Path, settings: RegionSettings) -> BlockJob:
    stem = f"blocks/{block.id}"
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
        window=block.as_tuple,
    )
    return BlockJob(block.id, block_settings, out_dir, tuple(files))


def _run_blocks(
    todo: list[Block],
    base: PredictSettings,
    settings: RegionSettings,
    out_dir: Path,
    plan: Plan,
    manifest: Manifest,
    figures: RunFigures,
    reporter: Reporter,
) -> None:
    """Submit every block, record each one as it ends; stop all on cancel."""
    from distributed import as_completed

    px_km2 = plan.work.res_m**2 / 1e6
    total_km2 = sum(b.pixels for b in todo) * px_km2
    tag = uuid.uuid4().hex[:8]
    with open_client(settings.cluster, reporter) as client:
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
                    record = _record_of(future, block, manifest.runs)
                    t0 = time.perf_counter()
                    manifest.record(record)
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
        except (Cancelled, KeyboardInterrupt):
            client.cancel(list(futures), force=True)
            raise


def _record_of(future: Any, block: Block, run: int) -> BlockRecord:
    """The manifest record of a finished, failed or lost block."""
    if future.status == "finished":
        result = future.result()
        return BlockRecord(
            block.id,
            block.as_tuple,
            result["state"],
            run,
            outputs=result.get("outputs", {}),
            counts=tuple(result.get("counts", ())),
            reason=result.get("reason", ""),
            seconds=result.get("seconds", 0.0),
            worker=result.get("worker", ""),
        )
    exc = future.exception()
    reason = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ == "KilledWorker":
        reason = (
            "the workers mapping it died each time (killed or out of memory; lower "
            f"--tile-size or give workers more memory): {exc}"
        )
    return BlockRecord(block.id, block.as_tuple, FAILED, run, reason=reason)


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
