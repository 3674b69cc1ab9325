"""The region's outputs, built from its finished blocks: map mosaic, statistics, polygons.

Each is written under a temporary name and renamed into place together (`engine.io
.destination`), so a crash while merging leaves the previous versions. Statistics count every
pixel of the region: blocks no data or polygon reaches, and blocks not finished, are no data.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.classes import FLAIR_CLASSES
from engine.figures.zone_table import ZoneTable
from engine.grid import Grid
from engine.io import style
from engine.io.destination import Destinations
from engine.progress import Reporter
from engine.region.blocks import Block
from engine.region.manifest import DONE, BlockRecord
from engine.region.vrt import map_xml
from engine.stats import class_areas, write_stats

if TYPE_CHECKING:
    import geopandas

MAP_NAME = "landcover.vrt"
CONFIDENCE_NAME = "confidence.vrt"
STATS_NAMES = ("stats.json", "stats.csv")
BLOCK_STATS_NAME = "stats_blocks.csv"
POLYGONS_NAME = "landcover.gpkg"


def write_region_outputs(
    out_dir: Path,
    work: Grid,
    area_origin: tuple[int, int],
    blocks: list[Block],
    records: dict[str, BlockRecord],
    polygons: bool,
    reporter: Reporter,
    zones: tuple[ZoneTable, geopandas.GeoDataFrame] | None = None,
) -> dict[str, str]:
    """Write the mosaics, statistics, polygons and zone table of the finished blocks; returns
    their paths."""
    done = [b for b in blocks if b.id in records and records[b.id].state == DONE]
    row0, col0 = area_origin
    written: dict[str, str] = {}
    with Destinations(overwrite=True) as dest:
        kinds = [("output", MAP_NAME, "FLAIR land cover")]
        if any("confidence" in records[b.id].outputs for b in done):
            kinds.append(("confidence", CONFIDENCE_NAME, "top class probability (%)"))
        for kind, name, title in kinds:
            placed = [
                (
                    records[b.id].outputs[kind]["file"],
                    b.col_off - col0,
                    b.row_off - row0,
                    b.width,
                    b.height,
                )
                for b in done
            ]
            dest.claim(out_dir / name, f"region {kind} mosaic", (".vrt",)).write_text(
                map_xml(work, placed, title)
            )
            written[kind] = str(out_dir / name)
        qml = out_dir / Path(MAP_NAME).with_suffix(".qml").name
        dest.claim(qml, "style").write_text(style.qml())
        written["style"] = str(qml)
        counts = np.zeros(20, dtype=np.int64)
        for b in done:
            counts += np.asarray(records[b.id].counts, dtype=np.int64)
        counts[0] += work.width * work.height - int(counts.sum())
        stats = class_areas(counts, work.res_m**2)
        stats["blocks"] = {"total": len(blocks), "done": len(done)}
        for name in STATS_NAMES:
            path = out_dir / name
            write_stats(stats, path, dest.claim(path, "region statistics"))
            written[Path(name).suffix[1:] + "_stats"] = str(path)
        _block_table(done, records, dest.claim(out_dir / BLOCK_STATS_NAME, "block statistics"))
        written["block_stats"] = str(out_dir / BLOCK_STATS_NAME)
        if polygons and done:
            path = out_dir / POLYGONS_NAME
            temp = dest.claim(path, "region polygons", (".gpkg",))
            reporter.start("polygons", len(done), "blocks")
            _merge_polygons(
                [out_dir / records[b.id].outputs["polygons"]["file"] for b in done],
                temp,
                path.stem,
                reporter,
            )
            written["polygons"] = str(path)
        if zones is not None and done:
            table, frame = zones
            table.claim(dest)
            measured, _ = table.write(dest.temporary(out_dir / MAP_NAME), frame, dest, reporter)
            written.update(measured)
        dest.commit()
    return written


def _block_table(done: list[Block], records: dict[str, BlockRecord], temp: Path) -> None:
    """One row per finished block: its place, its seconds and its pixels of each class."""
    with open(temp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(
            [
                "block",
                "col_off",
                "row_off",
                "width",
                "height",
                "seconds",
                "nodata",
                *(c.name for c in FLAIR_CLASSES),
            ]
        )
        for b in done:
            r = records[b.id]
            out.writerow([b.id, b.col_off, b.row_off, b.width, b.height, r.seconds, *r.counts])


def _merge_polygons(parts: list[Path], temp: Path, layer: str, reporter: Reporter) -> None:
    """Append each block's polygons to one GeoPackage layer (one block in memory at a time)."""
    import pyogrio

    first = True
    for part in parts:
        reporter.check_cancelled()
        frame = pyogrio.read_dataframe(part)
        if len(frame) or first:
            pyogrio.write_dataframe(frame, temp, layer=layer, driver="GPKG", append=not first)
            first = False
        reporter.advance(1)
