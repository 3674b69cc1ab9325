"""How long the region's input audit takes on a 1,500-tile delivery.

Generates an imitation BD ORTHO delivery (`tests/fixtures/bdortho.make_delivery`: RVB and IRC
products of `--tiles` small JPEG 2000 tiles each, GeoTIFF where GDAL lacks JPEG 2000), then
times `engine.region.inputs.gather` alone (the globs walked, every file opened once and its
last block read, every check) in a fresh process per run, so its peak RSS is the audit's own.
Each thread count of `--threads` is run `--repeat` times; the files are in the page cache.
Then the same for a few 2048 px tiles (`--large`), in 1024 px JPEG 2000 blocks as a full-size
tile may be: the cost of a file when the last block's decoding, not the opening, could dominate.

    .venv/bin/python benchmarks/bench_region_audit.py [--tiles 1500] [--tile-px 64] \\
        [--threads 1,8] [--repeat 3] [--elevation] [--large 2] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def cpu_name() -> str:
    """The first "model name" line of /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def audit_once(specs: dict[str, list[str]], threads: int) -> dict:
    """In this process: the audit of the delivery, its seconds and the peak RSS."""
    from engine.region import audit
    from engine.region.inputs import gather
    from engine.region.settings import ProductInputs

    audit.THREADS = threads
    products = ProductInputs({key: tuple(files) for key, files in specs.items() if files})
    started = time.perf_counter()
    inputs = gather(products)
    seconds = time.perf_counter() - started
    files = sum(len(f) for f in inputs.files.values())
    return {"seconds": seconds, "files": files, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM (ru_maxrss would count the parent's, whose
    peak a child inherits across fork and exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_audits(specs: dict[str, list[str]], threads: list[int], repeat: int) -> list[str]:
    """Lines of figures: the audit of `specs` with each thread count, `repeat` fresh runs."""
    lines = []
    for count in threads:
        runs = []
        for _ in range(repeat):
            child = json.dumps({"specs": specs, "threads": count})
            done = subprocess.run(
                [sys.executable, __file__, "--child", child],
                cwd=REPO,
                check=True,
                capture_output=True,
                text=True,
            )
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        seconds = statistics.median(r["seconds"] for r in runs)
        files = runs[0]["files"]
        each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        lines.append(
            f"  {count} thread(s): {seconds:.2f} s (median of {each}), {files} files: "
            f"{files / seconds:.0f} files/s, {files / seconds / len(specs):.0f} tiles/s, "
            f"{seconds / files * 1000:.1f} ms a file; peak RSS "
            f"{max(r['peak_rss_mb'] for r in runs):.0f} MB"
        )
    return lines


def delivery(root: Path, tiles: int, tile_px: int, elevation: bool) -> tuple[dict, str]:
    """A delivery of about `tiles` tiles per product in a 3:5 block; its globs and a line."""
    from tests.fixtures.bdortho import make_delivery

    cols = math.ceil(math.sqrt(tiles * 5 / 3))
    rows = math.ceil(tiles / cols)
    started = time.perf_counter()
    d = make_delivery(root, rows=rows, cols=cols, tile_px=tile_px, elevation=elevation)
    made = time.perf_counter() - started
    specs = {"rgb": [d.rgb_glob], "irc": [d.irc_glob]}
    if elevation:
        specs["elevation"] = [d.elevation_glob]
    products = "RVB, IRC and elevation" if elevation else "RVB and IRC"
    return specs, (
        f"{rows} x {cols} = {rows * cols} tiles of {tile_px} px per product ({d.suffix}, "
        f"{products}; generated in {made:.1f} s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=1500, help="tiles per product")
    parser.add_argument("--tile-px", type=int, default=64)
    parser.add_argument("--threads", default="1,8", help="thread counts to time")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--elevation", action="store_true", help="elevation tiles too")
    parser.add_argument(
        "--large", type=int, default=2, help="also time this many 2048 px tiles (0: no)"
    )
    parser.add_argument("--root", type=Path, help="generate here (default: a temporary folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one timed audit, in a fresh process
        request = json.loads(args.child)
        print(json.dumps(audit_once(request["specs"], request["threads"])))
        return 0

    threads = [int(t) for t in args.threads.split(",")]
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores seen)")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        specs, line = delivery(root / "delivery", args.tiles, args.tile_px, args.elevation)
        print(f"audit of {line}:")
        print("\n".join(time_audits(specs, threads, args.repeat)))
        if args.large:  # the last block of a 2048 px JPEG 2000 tile is 1024 px, as in IGN's
            specs, line = delivery(root / "large", args.large, 2048, args.elevation)
            print(f"audit of {line}:")
            print("\n".join(time_audits(specs, threads, args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
