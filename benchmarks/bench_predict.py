"""Speed and memory of `predict` on the CPU (or CUDA), printed as figures.

1. Speed: a generated 5-band 0.2 m raster mapped completely with the default tiling:
   km2 per hour, 512-tile equivalents per second, achieved GFLOP/s of the model (64.7 GFLOP
   per 512 x 512 patch, counting the margins each tile computes) against the fp32
   matrix-multiply GFLOP/s measured in the same process, and the model alone on one tile.
2. Memory: a 20,000 x 20,000 px raster (a VRT mosaic of a generated GeoTIFF) processed end to
   end (the whole output written, overviews, statistics) with inference limited by a polygon
   mask to a diagonal band, so that it finishes in minutes (tiles the band does not reach are
   skipped unread); peak RSS of the engine process is printed for a small and the large
   raster, to show it does not grow.

    .venv/bin/python benchmarks/bench_predict.py [--device cpu] [--size 2048] [--big 20000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import rasterio
import torch
from shapely.geometry import LineString

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from engine.settings import DEFAULT_MARGIN_PX, DEFAULT_TILE_SIZE_PX  # noqa: E402
from tests.fixtures.generate import make_orthophoto, make_unet_checkpoint  # noqa: E402

GFLOP_PER_512 = 64.7


def matmul_gflops(device: str, n: int = 2048, reps: int = 10) -> float:
    """fp32 matrix-multiply throughput, the machine's practical peak."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def model_gflops(ckpt: Path, device: str, tile: int, reps: int = 3) -> float:
    """The model alone on one tile, through the engine's Predictor (normalise, forward, argmax)."""
    import numpy as np

    from engine.inference import Predictor
    from engine.models.loader import load_model

    predictor = Predictor(load_model(str(ckpt)), device)
    x = np.random.default_rng(0).integers(0, 256, (1, 5, tile, tile), dtype=np.uint8)
    predictor.predict(x)
    t0 = time.perf_counter()
    for _ in range(reps):
        predictor.predict(x)
    seconds = (time.perf_counter() - t0) / reps
    return GFLOP_PER_512 * (tile / 512) ** 2 / seconds


def run_engine(args: list[str]) -> tuple[float, float, dict]:
    """Run `python -m engine predict ...`; return seconds, peak RSS in MB and the done event."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "predict", *args, "--progress", "json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (peak RSS)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        raise SystemExit(f"engine failed: {events[-1] if events else out}")
    return seconds, usage.ru_maxrss / 1024, events[-1]


def mosaic(tile_path: Path, out: Path, size: int, tile_px: int) -> Path:
    """A VRT repeating one GeoTIFF to `size` x `size` px (any raster GDAL reads is input)."""
    with rasterio.open(tile_path) as ds:
        t, count = ds.transform, ds.count
    n = -(-size // tile_px)
    bands = []
    for b in range(1, count + 1):
        sources = []
        for r in range(n):
            for c in range(n):
                w = min(tile_px, size - c * tile_px)
                h = min(tile_px, size - r * tile_px)
                sources.append(
                    f'<SimpleSource><SourceFilename relativeToVRT="0">{tile_path}</SourceFilename>'
                    f'<SourceBand>{b}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                    f'<DstRect xOff="{c * tile_px}" yOff="{r * tile_px}" xSize="{w}" ySize="{h}"/></SimpleSource>'
                )
        bands.append(
            f'<VRTRasterBand dataType="Byte" band="{b}">{"".join(sources)}</VRTRasterBand>'
        )
    out.write_text(
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>EPSG:2154</SRS>'
        f"<GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>{''.join(bands)}</VRTDataset>"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--size", type=int, default=2048, help="side of the fully mapped raster, px"
    )
    parser.add_argument("--big", type=int, default=20000, help="side of the memory-test raster, px")
    parser.add_argument("--tile-size", type=int, default=DEFAULT_TILE_SIZE_PX)
    parser.add_argument("--margin", type=int, default=DEFAULT_MARGIN_PX)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = make_unet_checkpoint(tmp / "m.pth", 5, 19, seed=1)
        common = [
            "--model",
            str(ckpt),
            "--device",
            args.device,
            "--tile-size",
            str(args.tile_size),
            "--margin",
            str(args.margin),
            "--batch-size",
            str(args.batch_size),
        ]
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
        mm = matmul_gflops(args.device)
        alone = model_gflops(ckpt, args.device, args.tile_size)
        print(f"fp32 matmul: {mm:.1f} GFLOP/s")
        print(
            f"model alone ({args.tile_size} px tile): {alone:.1f} GFLOP/s = {100 * alone / mm:.0f} % of matmul"
        )

        ortho = make_orthophoto(tmp / "o.tif", args.size, args.size, 5, seed=2)
        seconds, rss, done = run_engine([str(ortho), str(tmp / "map.tif"), *common])
        km2 = args.size**2 * 0.04 / 1e6
        core = args.tile_size - 2 * args.margin
        tiles = math.ceil(args.size / core) ** 2
        computed_512 = tiles * (args.tile_size / 512) ** 2
        print(
            f"\nfull map {args.size} x {args.size} px ({km2:.3f} km2), {tiles} tiles: {seconds:.1f} s, "
            f"peak RSS {rss:.0f} MB"
        )
        print(
            f"  {km2 / seconds * 3600:.2f} km2/h, {args.size**2 / 512**2 / seconds:.2f} 512-tiles/s of map, "
            f"{computed_512 * GFLOP_PER_512 / seconds:.1f} GFLOP/s end to end "
            f"({100 * computed_512 * GFLOP_PER_512 / seconds / mm:.0f} % of matmul)"
        )

        base = make_orthophoto(tmp / "base.tif", 2000, 2000, 5, seed=3)
        big = mosaic(base, tmp / "big.vrt", args.big, 2000)
        small = mosaic(base, tmp / "small.vrt", 4000, 2000)
        for path, label in ((small, "4,000"), (big, f"{args.big:,}")):
            with rasterio.open(path) as ds:
                l2, b2, r2, t2 = ds.bounds
            mask = tmp / f"mask_{path.stem}.gpkg"
            gpd.GeoDataFrame(
                {"id": [1]}, geometry=[LineString([(l2, t2), (r2, b2)]).buffer(25)], crs="EPSG:2154"
            ).to_file(mask)
            seconds, rss, done = run_engine(
                [
                    str(path),
                    str(tmp / f"{path.stem}.tif"),
                    *common,
                    "--mask",
                    str(mask),
                ]
            )
            print(
                f"\n{label} x {label} px raster (diagonal band mapped, whole output written): "
                f"{seconds:.0f} s, peak RSS {rss:.0f} MB, mapped {done['stats']['mapped_area_m2'] / 1e6:.3f} km2"
            )


if __name__ == "__main__":
    main()
