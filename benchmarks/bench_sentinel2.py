"""Time to load a Sentinel-2 series for 1 km2 from a generated local catalogue, then from cache.

    .venv/bin/python -m benchmarks.bench_sentinel2 [--dates 60] [--threads 4] [--http]

Generates a catalogue on the UTM 31/32 border (two items per date, 12 COGs each, 10 m and 20 m
assets) in a temporary folder, loads a 1 km x 1 km area in Lambert-93 (so both zones are
reprojected) through ``catalog:PATH`` (or the loopback STAC API with ``--http``), loads it again
from the cache, and cuts and prepares the super-patches of the 512 px tiles (0.2 m) of the area.
Prints one line per figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

from engine.models.card import Sentinel2Settings
from engine.progress import Reporter
from engine.sentinel2 import open_source, prepare_superpatch
from tests.fixtures.sentinel2_catalog import Acquisition, StacApiServer, border_xy, make_catalog

log = logging.getLogger("bench_sentinel2")


def acquisitions(n: int) -> tuple[Acquisition, ...]:
    """`n` dates spread over 2022, both zones, a few cloudy, baselines before and after 04.00."""
    step = max(365 // n, 1)
    out = []
    for i in range(n):
        day = dt.date(2022, 1, 3) + dt.timedelta(days=i * step)
        baseline = "03.01" if day < dt.date(2022, 1, 25) else "04.00"
        out.append(Acquisition(day, (31, 32), baseline, cloud=90 if i % 4 == 3 else 0))
    return tuple(out)


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def run(dates: int, threads: int, http: bool) -> None:
    settings = Sentinel2Settings()
    with tempfile.TemporaryDirectory(prefix="bench-s2-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        catalog = make_catalog(root / "catalog", acquisitions(dates))
        log.info(
            "catalogue: %d dates x 2 zones generated in %.1f s (%.1f MB)",
            dates,
            time.perf_counter() - t0,
            _dir_mb(root / "catalog"),
        )
        from pyproj import Transformer

        cx, cy = Transformer.from_crs(32631, 2154, always_xy=True).transform(*border_xy(32631))
        bounds = (cx - 500.0, cy - 500.0, cx + 500.0, cy + 500.0)
        cache = root / "cache"
        server = StacApiServer(catalog, lifetime_s=600).__enter__() if http else None
        spec = f"stac:{server.url}" if server else f"catalog:{catalog}"
        try:
            source = open_source(spec, cache_dir=cache, threads=threads)
            t0 = time.perf_counter()
            cube = source.load("EPSG:2154", bounds, 2022, settings, Reporter())
            cold = time.perf_counter() - t0
        finally:
            if server:
                server.stop()
        log.info(
            "load 1 km2 (%s, %d threads): %.2f s, %d dates, grid %d x %d px, cache %.1f MB",
            "loopback STAC API" if http else "local catalogue",
            threads,
            cold,
            cube.num_dates,
            cube.grid.width,
            cube.grid.height,
            _dir_mb(cache),
        )
        t0 = time.perf_counter()
        cube = open_source(spec, cache_dir=cache).load(
            "EPSG:2154", bounds, 2022, settings, Reporter()
        )
        log.info("load again from the cache: %.3f s", time.perf_counter() - t0)
        tile_m = 512 * 0.2
        n_side = int(1000 // tile_m)
        t0 = time.perf_counter()
        kept = 0
        for i in range(n_side):
            for j in range(n_side):
                x = bounds[0] + (i + 0.5) * tile_m
                y = bounds[1] + (j + 0.5) * tile_m
                series = prepare_superpatch(cube.superpatch(x, y), settings)
                kept += series is not None
        per_tile = (time.perf_counter() - t0) / n_side**2
        log.info(
            "super-patch + preparation: %.2f ms per tile (%d tiles, %d with a series)",
            per_tile * 1e3,
            n_side**2,
            kept,
        )
        del cube
        shutil.rmtree(cache, ignore_errors=True)
    log.info(
        "peak resident memory: %.0f MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dates", type=int, default=60, help="acquisition dates in the year")
    parser.add_argument("--threads", type=int, default=4, help="reader threads")
    parser.add_argument("--http", action="store_true", help="through a loopback STAC API")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("engine").setLevel(logging.WARNING)
    run(args.dates, args.threads, args.http)


if __name__ == "__main__":
    main()
