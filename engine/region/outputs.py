"""The region's output folder, and its outputs built from the finished blocks: map mosaic,
statistics, polygons.

Each output is written under a temporary name and renamed into place together (`engine.io
.destination`), so a crash while merging leaves the previous versions. Statistics count every
pixel of the region: blocks no data or polygon reaches, and blocks not finished, are no data.
A run remembers what it created in the folder and removes it again if it stops before its
first block (`OutputFolder`); a run that changes which blocks are done (blocks to map, a
`--restart`) first retires these outputs (`retire_region_outputs`), so that whatever stops it,
the outputs present describe exactly the blocks the manifest says are done; and what its killed
workers left half-written is swept once they are gone (`sweep_leftovers`).
"""

from __future__ import annotations

import contextlib
import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.classes import FLAIR_CLASSES, N_CODES
from engine.errors import OutputError
from engine.figures.zone_table import ZoneTable
from engine.grid import Grid, Window
from engine.io import style
from engine.io.destination import Destinations
from engine.io.output_table import output
from engine.progress import Reporter
from engine.region.blocks import Block
from engine.region.manifest import DONE, BlockRecord
from engine.region.vrt import map_xml
from engine.stats import class_areas, write_stats

if TYPE_CHECKING:
    import geopandas

MAP_NAME = output("output").region_file
CONFIDENCE_NAME = output("confidence").region_file
STATS_NAMES = ("stats.json", "stats.csv")
BLOCK_STATS_NAME = "stats_blocks.csv"
POLYGONS_NAME = output("polygons").region_file


@dataclass
class OutputFolder:
    """A region's output folder and what this run created in it, in order: removed again
    while no block has run, so a failed check or an early cancel leaves the folder as found."""

    path: Path
    created: list[Path] = field(default_factory=list)
    kept: bool = False

    @classmethod
    def open(cls, path: Path) -> OutputFolder:
        """The folder, checked, and made when absent (the run's lock goes there)."""
        path = Path(path).absolute()
        if path.is_file():
            raise OutputError(f"{path} is a file; the region's output is a folder")
        if not path.parent.is_dir():
            raise OutputError(f"folder {path.parent} does not exist; create it first")
        folder = cls(path)
        folder.expect(path)
        path.mkdir(exist_ok=True)
        return folder

    def expect(self, path: Path) -> None:
        """`path` is about to be created: remember it when it is not there yet."""
        if not path.exists():
            self.created.append(path)

    def keep(self) -> None:
        """Blocks are about to run: from now on, what the run made stays."""
        self.kept = True

    def undo(self) -> None:
        """Remove what the run made (call it once the run's lock is released), unless kept."""
        if self.kept:
            return
        for path in reversed(self.created):
            if path == self.path:
                with contextlib.suppress(OSError):
                    path.rmdir()  # only when empty: nothing but what this run made was there
            elif path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self.created.clear()


def write_region_outputs(
    out_dir: Path,
    work: Grid,
    area: Window,
    blocks: list[Block],
    records: dict[str, BlockRecord],
    polygons: bool,
    reporter: Reporter,
    zones: tuple[ZoneTable, geopandas.GeoDataFrame] | None = None,
) -> dict[str, str]:
    """Write the mosaics, statistics, polygons and zone table of the finished blocks; returns
    their paths."""
    done = [b for b in blocks if b.id in records and records[b.id].state == DONE]
    row0, col0 = int(area.row_off), int(area.col_off)  # blocks are placed on `work`, the area's
    written: dict[str, str] = {}
    with Destinations(overwrite=True) as dest:
        kinds = [("output", MAP_NAME, "FLAIR land cover")]
        if any("confidence" in records[b.id].outputs for b in done):
            kinds.append(("confidence", CONFIDENCE_NAME, "top class probability (%)"))
        for kind, name, title in kinds:
            placed = [
                (
                    records[b.id].outputs[kind]["file"],
                    Window(b.col_off - col0, b.row_off - row0, b.width, b.height),
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
        counts = np.zeros(N_CODES, dtype=np.int64)
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


def retire_region_outputs(out_dir: Path, also: tuple[Path, ...] = ()) -> list[str]:
    """Remove the region's folder-level outputs (its map and confidence mosaics, style,
    statistics, polygons, the default zone table) and `also` (the run record, a zone table
    elsewhere): what must not outlive the set of done blocks it describes, once a run (a
    resume, a restart) is about to change it. The map goes first, its companions after it.
    Blocks are left: they are the manifest's. Returns the names removed."""
    mosaics = [out_dir / MAP_NAME, out_dir / CONFIDENCE_NAME]
    names = [
        *mosaics,
        *(m.with_name(m.name + ".aux.xml") for m in mosaics),  # GDAL's statistics of them
        out_dir / Path(MAP_NAME).with_suffix(".qml").name,
        *(out_dir / n for n in (*STATS_NAMES, BLOCK_STATS_NAME)),
        out_dir / POLYGONS_NAME,
        *ZoneTable.beside(out_dir / MAP_NAME),
        *also,
    ]
    sqlite = [
        p.with_name(p.name + s) for p in names if p.suffix == ".gpkg" for s in ("-wal", "-shm")
    ]
    removed = []
    for path in dict.fromkeys([*names, *sqlite]):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path.name)
    return removed


def sweep_leftovers(folder: Path) -> list[str]:
    """Remove what writers killed mid-file left in `folder` (the blocks of the local workers
    a cancel kills, or of a worker that died): the temporaries of every file whose lock no
    live process holds, and the lock. Files a live writer holds are left to it. Returns the
    names whose leftovers were removed."""
    try:
        locks = sorted(folder.glob(".*.lock"))
    except OSError:
        return []
    swept = []
    for lock in locks:
        target = folder / lock.name[1 : -len(".lock")]
        leftovers = Destinations(overwrite=True)
        try:
            leftovers.claim(target, "leftover")  # sweeps the temporaries of a dead writer
        except OutputError:
            continue  # a live writer holds it (or the folder went): its own to finish
        finally:
            leftovers.abort()  # releases the lock and removes its file
        swept.append(target.name)
    return swept


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
