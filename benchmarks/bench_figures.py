"""Speed and memory of `zones` and `change` on a map the size of a few communes' orthophotos.

1. A FLAIR-coded map of `--size` px square (default 20,000: 16 km2 at 0.2 m, tiled DEFLATE
   GeoTIFF, patches of classes like a real map) and a second one where a share of the patches
   changed class, plus `--zones` commune-like polygons (Voronoi cells of random points, default
   500) in another CRS than the map's.
2. `flair-landcover zones MAP --zones Z --out OUT.gpkg`, end to end in its own process, against
   exactextract alone on the same inputs (the same `unique`, `frac` and `count` operations,
   no outputs written): seconds and peak RSS of each.
3. `flair-landcover change BEFORE AFTER OUT_DIR`, and with `--zones`: seconds and peak RSS.

    .venv/bin/python benchmarks/bench_figures.py [--size 20000] [--zones 500] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PATCH_PX = 250  # 50 m patches of one class at 0.2 m
BLOCK_PX = 2000

# exactextract alone: the measurement `zones` makes (the same operations), without its checks,
# chunking, no-data accounting, attributes and writing
BARE_EXACTEXTRACT = """
import sys, geopandas, rasterio
from exactextract import exact_extract
with rasterio.open(sys.argv[1]) as src:
    zones = geopandas.read_file(sys.argv[2]).to_crs(src.crs)
    exact_extract(src, zones, ["unique", "frac", "count"], output="pandas",
                  max_cells_in_memory=16_000_000)
"""


def write_maps(folder: Path, size_px: int, seed: int = 7) -> tuple[Path, Path]:
    """Two 0.2 m EPSG:2154 maps of class patches, written block by block (bounded memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    patches = -(-size_px // PATCH_PX)
    before_codes = rng.integers(1, 20, size=(patches, patches), dtype=np.uint8)
    changed = rng.random((patches, patches)) < 0.1
    after_codes = np.where(changed, rng.integers(1, 20, size=changed.shape), before_codes)
    profile = dict(
        driver="GTiff", width=size_px, height=size_px, count=1, dtype="uint8", nodata=0,
        crs="EPSG:2154", transform=from_origin(650_000, 6_870_000, 0.2, 0.2),
        tiled=True, blockxsize=512, blockysize=512, compress="deflate", BIGTIFF="IF_SAFER",
    )  # fmt: skip
    paths = []
    for name, codes in (("before.tif", before_codes), ("after.tif", after_codes)):
        path = folder / name
        with rasterio.open(path, "w", **profile) as dst:
            dst.update_tags(CLASSES="FLAIR nomenclature, codes 1-19, 0 = no data")
            for row in range(0, size_px, BLOCK_PX):
                for col in range(0, size_px, BLOCK_PX):
                    h, w = min(BLOCK_PX, size_px - row), min(BLOCK_PX, size_px - col)
                    rows = (np.arange(row, row + h) // PATCH_PX)[:, None]
                    cols = (np.arange(col, col + w) // PATCH_PX)[None, :]
                    block = codes[rows, cols].astype(np.uint8)
                    block[:8, :] = 0  # a strip of no data at each block's top
                    dst.write(block, 1, window=Window(col, row, w, h))
        paths.append(path)
    return paths[0], paths[1]


def write_zones(
    folder: Path, size_px: int, count: int, seed: int = 11, name: str = "communes.gpkg"
) -> Path:
    """`count` Voronoi cells over the map and a margin around it, in EPSG:4326."""
    import geopandas
    import shapely

    rng = np.random.default_rng(seed)
    side_m = size_px * 0.2
    left, top = 650_000, 6_870_000
    margin = side_m * 0.05
    x = rng.uniform(left - margin, left + side_m + margin, count)
    y = rng.uniform(top - side_m - margin, top + margin, count)
    box = shapely.box(left - margin, top - side_m - margin, left + side_m + margin, top + margin)
    cells = shapely.voronoi_polygons(shapely.multipoints(np.column_stack([x, y])), extend_to=box)
    polygons = [shapely.intersection(c, box) for c in shapely.get_parts(cells)]
    zones = geopandas.GeoDataFrame(
        {"insee": [f"{75000 + i}" for i in range(len(polygons))]},
        geometry=polygons,
        crs="EPSG:2154",
    ).to_crs("EPSG:4326")
    path = folder / name
    zones.to_file(path, layer="communes")
    return path


def write_mosaic(folder: Path, source: Path, size_px: int, copies: int) -> Path:
    """A VRT of `copies` x `copies` copies of the map `source`, side by side: a map larger than
    the memory a run may take (2 x 2 copies of 20,000 px: 1.6 GB of pixels)."""
    import rasterio

    with rasterio.open(source) as src:
        wkt, t = src.crs.to_wkt(), src.transform
    side = size_px * copies
    sources = "".join(
        f'<SimpleSource><SourceFilename relativeToVRT="1">{source.name}</SourceFilename>'
        f'<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{size_px}" '
        f'ySize="{size_px}"/><DstRect xOff="{col * size_px}" yOff="{row * size_px}" '
        f'xSize="{size_px}" ySize="{size_px}"/></SimpleSource>\n'
        for row in range(copies)
        for col in range(copies)
    )
    path = folder / f"{source.stem}_mosaic.vrt"
    path.write_text(
        f'<VRTDataset rasterXSize="{side}" rasterYSize="{side}">\n'
        f"<SRS>{wkt.replace('&', '&amp;').replace('<', '&lt;')}</SRS>\n"
        f"<GeoTransform>{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}</GeoTransform>\n"
        '<Metadata><MDI key="CLASSES">FLAIR nomenclature, codes 1-19, 0 = no data</MDI>'
        "</Metadata>\n"
        f'<VRTRasterBand dataType="Byte" band="1"><NoDataValue>0</NoDataValue>\n{sources}'
        "</VRTRasterBand>\n</VRTDataset>\n"
    )
    return path


def timed(args: list[str]) -> tuple[float, float]:
    """Run a command in its own process: (wall seconds, its peak RSS in MB)."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(time.perf_counter() - t, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, check=True, capture_output=True, text=True
    )
    seconds, rss_mb = out.stdout.split()
    return float(seconds), float(rss_mb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="map side in px")
    parser.add_argument("--zones", type=int, default=500, help="number of zones")
    parser.add_argument("--keep", type=Path, help="write the inputs here and keep them")
    parser.add_argument(
        "--mosaic", type=int, default=0, help="also N x N copies of the maps as a VRT (streaming)"
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_figures_"))
    work.mkdir(parents=True, exist_ok=True)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores")
    t0 = time.perf_counter()
    before, after = write_maps(work, args.size)
    zones = write_zones(work, args.size, args.zones)
    km2 = (args.size * 0.2) ** 2 / 1e6
    print(f"inputs: 2 maps of {args.size} px ({km2:.1f} km2), {args.zones} zones, "
          f"written in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    engine = [sys.executable, "-m", "engine"]
    rows = [
        ("exactextract alone (same operations)",
         timed([sys.executable, "-c", BARE_EXACTEXTRACT, str(after), str(zones)])),
        ("flair-landcover zones",
         timed([*engine, "zones", str(after), "--zones", str(zones),
                "--out", str(work / "zones.gpkg"), "--overwrite"])),
        ("flair-landcover change",
         timed([*engine, "change", str(before), str(after), str(work / "change"),
                "--overwrite"])),
        ("flair-landcover change --zones",
         timed([*engine, "change", str(before), str(after), str(work / "change_zones"),
                "--zones", str(zones), "--overwrite"])),
    ]  # fmt: skip
    print(f"{'run':<36} {'seconds':>8} {'peak RSS MB':>12} {'km2/h':>8}")
    for name, (seconds, rss_mb) in rows:
        print(f"{name:<36} {seconds:8.1f} {rss_mb:12.0f} {km2 / seconds * 3600:8.0f}")
    if args.mosaic > 1:
        side = args.size * args.mosaic
        big_before = write_mosaic(work, before, args.size, args.mosaic)
        big_after = write_mosaic(work, after, args.size, args.mosaic)
        big_zones = write_zones(work, side, args.zones, seed=12, name="communes_mosaic.gpkg")
        big_km2 = km2 * args.mosaic**2
        print(f"mosaic: VRTs of {args.mosaic} x {args.mosaic} maps ({side} px, {big_km2:.0f} km2, "
              f"{side * side / 1e9:.1f} GB of pixels), {args.zones} zones")  # fmt: skip
        for name, run in (
            ("zones on the mosaic",
             [*engine, "zones", str(big_after), "--zones", str(big_zones),
              "--out", str(work / "zones_mosaic.gpkg"), "--overwrite"]),
            ("change on the mosaics",
             [*engine, "change", str(big_before), str(big_after), str(work / "change_mosaic"),
              "--overwrite"]),
        ):  # fmt: skip
            seconds, rss_mb = timed(run)
            print(f"{name:<36} {seconds:8.1f} {rss_mb:12.0f} {big_km2 / seconds * 3600:8.0f}")
    bare, zones_run = rows[0][1][0], rows[1][1][0]
    print(f"zones / exactextract alone: {zones_run / bare:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
