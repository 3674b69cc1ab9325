"""Speed of `region` on this machine, its overhead over `predict`, and a département's time.

1. Scaling: one imitation BD ORTHO delivery (RVB + IRC JPEG 2000 tiles, `--size` px square)
   mapped end to end by `flair-landcover region` with local clusters of workers x threads
   (default 1x1, 1x2, 2x1): km2/h and parallel efficiency (speed-up over 1x1 / cores used).
2. Overhead: `predict` of the same mosaic with the same tiling and threads, end to end, against
   the region run with one worker of as many threads (fixed costs: cluster start, a model load
   per worker, the manifest) and, without those, the blocks' own seconds.
3. Per-block costs: the manifest rewrite (measured for a département-sized manifest too) and
   the scheduler's round trip for an empty task.
4. Extrapolation to a 6,000 km2 département on N machines like this one, from the measured rate.

    .venv/bin/python benchmarks/bench_region.py [--size 4096] [--block 2048] [--configs 1x1,1x2,2x1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.fixtures.bdortho import make_delivery  # noqa: E402
from tests.fixtures.generate import make_unet_checkpoint  # noqa: E402

DEPARTEMENT_KM2 = 6_000


def engine(*args: str) -> float:
    """Run `python -m engine ARGS` and return its wall seconds (it must succeed)."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def region(out: Path, delivery, ckpt: Path, tiling: list[str], workers: int, threads: int) -> dict:
    """One region run from scratch; its wall seconds and what it recorded (run.json)."""
    shutil.rmtree(out, ignore_errors=True)
    wall = engine(
        "region",
        str(out),
        "--rgb",
        delivery.rgb_glob,
        "--irc",
        delivery.irc_glob,
        "--model",
        str(ckpt),
        *tiling,
        "--workers",
        str(workers),
        "--threads-per-worker",
        str(threads),
    )
    record = json.loads((out / "run.json").read_text())
    return {"wall_s": wall, **record}


def manifest_cost(blocks: int, root: Path) -> float:
    """Seconds to record one block in a manifest that already holds `blocks` records."""
    from engine.region.manifest import DONE, BlockRecord, Manifest

    root.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.open(root, {"bench": blocks}, restart=True)
    sha = {"output": {"file": "blocks/x.tif", "sha256": "0" * 64}}
    for i in range(blocks):
        manifest.blocks[f"b{i}"] = BlockRecord(f"b{i}", (0, 0, 1, 1), DONE, 1, sha, (0,) * 20)
    t0 = time.perf_counter()
    for i in range(5):
        manifest.record(BlockRecord(f"b{i}", (0, 0, 1, 1), DONE, 1, sha, (0,) * 20))
    return (time.perf_counter() - t0) / 5


def scheduler_round_trip(tasks: int = 200) -> float:
    """Seconds per empty task through a local cluster of one worker process."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.submit(int, 0).result()
        t0 = time.perf_counter()
        for future in [client.submit(int, i, pure=False) for i in range(tasks)]:
            future.result()
        return (time.perf_counter() - t0) / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=4096, help="region side in px (0.2 m)")
    parser.add_argument("--tile-px", type=int, default=1024, help="delivery tile side in px")
    parser.add_argument("--block", type=int, default=2048, help="--block-size of the runs")
    parser.add_argument("--tile-size", type=int, default=1280)
    parser.add_argument("--margin", type=int, default=128)
    parser.add_argument("--configs", default="1x1,1x2,2x1", help="workers x threads to time")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_region_"))
    try:
        n = args.size // args.tile_px
        delivery = make_delivery(root / "bd", rows=n, cols=n, tile_px=args.tile_px)
        ckpt = make_unet_checkpoint(root / "rgbi.pth", 4, 19, "flair-inc", seed=3)
        tiling = [
            "--tile-size",
            str(args.tile_size),
            "--margin",
            str(args.margin),
            "--block-size",
            str(args.block),
        ]
        area_km2 = (n * args.tile_px * 0.2) ** 2 / 1e6
        print(
            f"region: {n} x {n} JPEG 2000 tiles of {args.tile_px} px per product, "
            f"{area_km2:.3f} km2; tiles {args.tile_size}/{args.margin}, blocks {args.block}"
        )
        runs = {}
        for config in args.configs.split(","):
            workers, threads = (int(v) for v in config.split("x"))
            runs[config] = r = region(root / config, delivery, ckpt, tiling, workers, threads)
            r["cores"] = workers * threads
            r["km2_h"] = area_km2 / r["wall_s"] * 3600
            blocks = r["computed_this_run"]
            print(
                f"{config}: {r['wall_s']:.1f} s end to end ({r['wall_seconds']:.1f} s cluster "
                f"and blocks, {r['worker_seconds']:.1f} s in {blocks} blocks), "
                f"{r['km2_h']:.2f} km2/h"
            )
        base = runs.get("1x1")
        for config, r in runs.items():
            if base and config != "1x1":
                speedup = r["km2_h"] / base["km2_h"]
                print(
                    f"{config}: speed-up {speedup:.2f}x over 1x1, efficiency "
                    f"{speedup / r['cores'] * 100:.0f} % of {r['cores']} cores"
                )
        threads = max(int(c.split("x")[1]) for c in runs)
        mosaic = root / next(iter(runs)) / "inputs" / "mosaic.vrt"
        predict_s = engine(
            "predict",
            str(mosaic),
            str(root / "predict.tif"),
            "--model",
            str(ckpt),
            *tiling[:4],
            "--threads",
            str(threads),
        )
        same = runs.get(f"1x{threads}")
        if same:
            blocks_s = same["worker_seconds"]
            print(
                f"predict, {threads} threads, same mosaic and tiling: {predict_s:.1f} s end to "
                f"end; region 1x{threads}: {same['wall_s']:.1f} s, overhead "
                f"{(same['wall_s'] / predict_s - 1) * 100:+.1f} % end to end; the blocks "
                f"alone {blocks_s:.1f} s ({(blocks_s / predict_s - 1) * 100:+.1f} %)"
            )
        if same:
            per_block = same["manifest_seconds"] / max(1, same["computed_this_run"])
            print(
                f"manifest, per block: {per_block * 1e3:.1f} ms here; "
                f"{manifest_cost(1500, root / 'm1500') * 1e3:.1f} ms with 1,500 blocks "
                "(a departement in blocks of 10,240 px)"
            )
        print(f"scheduler round trip per task: {scheduler_round_trip() * 1e3:.2f} ms")
        for config, r in runs.items():  # blocks alone: the rate once fixed costs are amortised
            workers = int(config.split("x")[0])
            r["steady_km2_h"] = area_km2 / (r["worker_seconds"] / workers) * 3600
            print(f"{config}: blocks alone {r['steady_km2_h']:.2f} km2/h per machine")
        best = max(runs.values(), key=lambda r: r["steady_km2_h"])
        for machines in (1, 10, 50, 100):
            hours = DEPARTEMENT_KM2 / (best["steady_km2_h"] * machines)
            print(
                f"  {DEPARTEMENT_KM2} km2 on {machines:>3} machine(s) like this one: "
                f"{hours:,.0f} h ({hours / 24:,.1f} days)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
