"""Write the demo's sample orthophoto: 5 bands (R, G, B, NIR, elevation), 0.2 m, Lambert-93.

The scene is synthetic but structured (fields, a road, buildings, water, woods) so that the
map has recognisable shapes; `make demo` maps it with the default model.

    .venv/bin/python scripts/make_sample.py sample/ortho_rgbie.tif [--size 1536]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

# R, G, B, NIR, elevation (nDSM, 8-bit) of each surface
SURFACES = {
    "field": (170, 160, 95, 150, 5),
    "meadow": (95, 140, 70, 190, 8),
    "wood": (45, 75, 40, 170, 120),
    "water": (35, 60, 85, 20, 0),
    "road": (120, 118, 115, 60, 2),
    "roof": (170, 80, 70, 70, 60),
}


def scene(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kind = np.zeros((size, size), dtype=np.int8)
    names = list(SURFACES)
    yy, xx = np.mgrid[0:size, 0:size]
    kind[:, :] = names.index("field")
    kind[(xx + yy // 3) % 700 < 260] = names.index("meadow")
    kind[(xx - size * 0.65) ** 2 + (yy - size * 0.3) ** 2 < (size * 0.18) ** 2] = names.index(
        "wood"
    )
    kind[(xx - size * 0.2) ** 2 / 4 + (yy - size * 0.75) ** 2 < (size * 0.09) ** 2] = names.index(
        "water"
    )
    kind[np.abs(yy - 0.45 * xx - size * 0.35) < 14] = names.index("road")
    for _ in range(25):
        r, c = rng.integers(size * 0.55, size * 0.95), rng.integers(size * 0.4, size * 0.95)
        h, w = rng.integers(40, 90, size=2)
        kind[r : r + h, c : c + w] = names.index("roof")
    table = np.array([SURFACES[n] for n in names], dtype=np.float32)
    bands = table[kind].transpose(2, 0, 1)
    bands += rng.normal(0, 8, size=bands.shape).astype(np.float32)
    return np.clip(bands, 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=1536)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = scene(args.size)
    profile = {
        "driver": "GTiff",
        "width": args.size,
        "height": args.size,
        "count": 5,
        "dtype": "uint8",
        "crs": "EPSG:2154",
        "transform": from_origin(843000.0, 6520000.0, 0.2, 0.2),
        "tiled": True,
        "compress": "deflate",
        "photometric": "MINISBLACK",
    }
    with rasterio.open(args.out, "w", **profile) as ds:
        ds.write(data)
        ds.colorinterp = [
            ColorInterp.red,
            ColorInterp.green,
            ColorInterp.blue,
            ColorInterp.gray,
            ColorInterp.gray,
        ]
        for i, name in enumerate(("red", "green", "blue", "near infrared", "elevation"), start=1):
            ds.set_band_description(i, name)
    print(args.out)


if __name__ == "__main__":
    main()
