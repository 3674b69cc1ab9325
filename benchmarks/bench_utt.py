"""U-T&T against the U-Net on the CPU: inference cost per km2, and the Sentinel-2 load for 1 km2.

    .venv/bin/python -m benchmarks.bench_utt [--tiles 4] [--threads 2] [--dates 60]

1. Generates a local catalogue (`--dates` dates, two UTM zones; as benchmarks/bench_sentinel2)
   and loads the series of a 1 km x 1 km Lambert-93 area from it (cold, then from the cache).
2. Generates a FLAIR-INC U-Net checkpoint (5 channels, 19 logits) and a FLAIR-2 U-T&T checkpoint
   (with the metadata MLP), and times `Predictor.predict` on the same 512 px tiles (batch 1,
   fp32, after one warm-up forward): the U-Net alone, and U-T&T with each tile's prepared
   super-patch and metadata (cut from the loaded series, as `predict` does).
3. Prints seconds per tile and per km2 with 512 px tiles and the default 128 px margin (a 256 px
   core, 51.2 m: 381.5 tiles per km2), and U-T&T's overhead over the U-Net.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from affine import Affine
from rasterio.crs import CRS

from benchmarks.bench_sentinel2 import acquisitions
from engine.grid import Grid
from engine.inference import Predictor
from engine.models.loader import load_model
from engine.models.utt.inputs import Acquisition, MetadataEncoder, Sentinel2Inputs, centres_bounds
from engine.progress import Reporter
from engine.sentinel2 import open_source
from engine.tiling import Tiling
from tests.fixtures.generate import make_unet_checkpoint
from tests.fixtures.sentinel2_catalog import border_xy, make_catalog
from tests.fixtures.utt_checkpoint import make_utt_checkpoint

log = logging.getLogger("bench_utt")

TILE_PX = 512
MARGIN_PX = 128
RES_M = 0.2
TILES_PER_KM2 = 1e6 / ((TILE_PX - 2 * MARGIN_PX) * RES_M) ** 2


def _time_tiles(predictor: Predictor, images: np.ndarray, extras_for) -> float:
    """Mean seconds per tile over `images` (one forward each), after one warm-up forward."""
    predictor.predict(images[:1], extras_for(0))
    t0 = time.perf_counter()
    for i in range(len(images)):
        predictor.predict(images[i : i + 1], extras_for(i))
    return (time.perf_counter() - t0) / len(images)


def run(tiles: int, threads: int, dates: int) -> None:
    from pyproj import Transformer

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="bench-utt-") as tmp:
        root = Path(tmp)
        catalog = make_catalog(root / "catalog", acquisitions(dates))
        cx, cy = Transformer.from_crs(32631, 2154, always_xy=True).transform(*border_xy(32631))
        x0, y1 = round(cx - 500.0), round(cy + 500.0)
        work = Grid(CRS.from_epsg(2154), Affine(RES_M, 0, x0, 0, -RES_M, y1), 5000, 5000)
        tiling = Tiling(work.height, work.width, TILE_PX, MARGIN_PX)
        all_tiles = list(tiling)
        bounds = centres_bounds(work, all_tiles)
        utt = load_model(str(make_utt_checkpoint(root / "utt.ckpt")), say=lambda m: None)
        unet_ckpt = make_unet_checkpoint(root / "unet.pth", 5, 19, "flair-inc")
        unet = load_model(str(unet_ckpt), say=lambda m: None)
        settings_s2 = utt.card.sentinel2
        source = open_source(f"catalog:{catalog}", cache_dir=root / "cache")
        t0 = time.perf_counter()
        cube = source.load("EPSG:2154", bounds, 2022, settings_s2, Reporter())
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        cube = source.load("EPSG:2154", bounds, 2022, settings_s2, Reporter())
        log.info(
            "Sentinel-2 load, 1 km2 area (+200 m), local catalogue of %d dates x 2 UTM zones "
            "into Lambert-93: %.2f s cold (%d dates, %d x %d px), %.3f s from the cache",
            dates,
            cold,
            cube.num_dates,
            cube.grid.width,
            cube.grid.height,
            time.perf_counter() - t0,
        )
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (tiles, 5, TILE_PX, TILE_PX), dtype=np.uint8)
        step = max(len(all_tiles) // tiles, 1)
        chosen = all_tiles[::step][:tiles]
        acq = Acquisition(dt.date(2021, 6, 20), "11h00", "UCE-M3", 450.0)
        inputs = Sentinel2Inputs(
            cube,
            work,
            settings_s2,
            MetadataEncoder(work.crs, acq, (2018, 2019, 2020, 2021)),
            False,
            Reporter(),
            {"year": 2022},
        )
        t0 = time.perf_counter()
        extras = [inputs([tile]) for tile in chosen]
        prep = (time.perf_counter() - t0) / len(chosen)
        t_unet = _time_tiles(Predictor(unet, "cpu", threads, "fp32"), images, lambda i: None)
        t_utt = _time_tiles(Predictor(utt, "cpu", threads, "fp32"), images, lambda i: extras[i])
        frames = [int(e["s2"].shape[1]) for e in extras]
        log.info(
            "CPU, %d threads, batch 1, fp32, %d tiles of %d px (%s dates per tile after the "
            "filter and monthly means):",
            threads,
            tiles,
            TILE_PX,
            sorted(set(frames)),
        )
        log.info("  U-Net     %.2f s/tile  %.0f s/km2", t_unet, t_unet * TILES_PER_KM2)
        log.info("  U-T&T     %.2f s/tile  %.0f s/km2", t_utt, t_utt * TILES_PER_KM2)
        log.info(
            "  overhead  %.2f s/tile  %.0f s/km2 (x%.2f), plus %.1f ms/tile of super-patch "
            "preparation (%.1f s/km2)",
            t_utt - t_unet,
            (t_utt - t_unet) * TILES_PER_KM2,
            t_utt / t_unet,
            prep * 1e3,
            prep * TILES_PER_KM2,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=4, help="tiles timed per model")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--dates", type=int, default=60, help="acquisition dates in the year")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("engine").setLevel(logging.WARNING)
    run(args.tiles, args.threads, args.dates)


if __name__ == "__main__":
    main()
