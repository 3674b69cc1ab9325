"""A U-T&T scene for the plugin tests, written by the engine venv (QGIS's Python has no torch).

    .venv/bin/python -m tests.plugin.utt_scene OUT_DIR

writes OUT_DIR/catalog/catalog.json (a local Sentinel-2 catalogue of 2021), OUT_DIR/ortho.tif
(600 x 600 px, 0.2 m, Lambert-93, 5 bands, tagged ACQUISITION_DATE=2021-06-12 10:30:00) and
OUT_DIR/utt.ckpt (an official-layout U-T&T checkpoint with the metadata MLP), and prints their
paths as JSON. The layout is the one of tests/engine/test_utt_predict.py: with 512 px tiles and
a 64 px margin (2 x 2 tiles) the lower tiles' super-patches lie inside the catalogue's items
(clear dates in March and July, a cloudy one in June) and the upper tiles' cross their north
edge, so those run on the aerial branch alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from tests.fixtures.generate import make_orthophoto
from tests.fixtures.sentinel2_catalog import Acquisition, border_xy, item_extent, make_catalog
from tests.fixtures.utt_checkpoint import make_utt_checkpoint

HALF_HEIGHT_M = 600.0
TAG_DATE = "2021-06-12 10:30:00"
DATES = (
    Acquisition(dt.date(2021, 3, 10), (31,), "04.00"),
    Acquisition(dt.date(2021, 6, 10), (31,), "04.00", cloud=90),
    Acquisition(dt.date(2021, 7, 12), (31,), "04.00"),
)


def make_scene(root: Path) -> dict[str, str]:
    """Write the catalogue, the tagged orthophoto and the checkpoint under `root`."""
    import rasterio
    from pyproj import Transformer

    root.mkdir(parents=True, exist_ok=True)
    catalog = make_catalog(root / "catalog", DATES, HALF_HEIGHT_M)
    item_ymax = item_extent(31, HALF_HEIGHT_M)[3]
    x31 = border_xy(32631)[0] - 500.0
    top31 = item_ymax - 200.0 + 76.8  # midway between the two rows of tile centres
    x, y = Transformer.from_crs(32631, 2154, always_xy=True).transform(x31 - 60.0, top31)
    origin = (round(x / 0.2) * 0.2, round(y / 0.2) * 0.2)
    ortho = make_orthophoto(root / "ortho.tif", 600, 600, 5, origin_xy=origin, seed=7)
    with rasterio.open(ortho, "r+") as ds:
        ds.update_tags(ACQUISITION_DATE=TAG_DATE)
    ckpt = make_utt_checkpoint(root / "utt.ckpt", metadata=True, seed=5)
    return {"catalog": str(catalog), "ortho": str(ortho), "ckpt": str(ckpt)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    print(json.dumps(make_scene(args.out)))  # noqa: T201 - command-line output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
