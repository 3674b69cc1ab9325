"""The input audit: every file of every product opened once and checked alike, before any work.

RVB, IRC and elevation tiles go through the same checks, and every problem found is listed in
one message: files that cannot be read (the last block of each is read, so a truncated file
shows here rather than as a failed block naming the mosaic), files without a CRS, tiles whose
CRS, data type, band count or nodata differ from the others', tiles that overlap with different
pixels, tiles one product has and another lacks (elevation by its coverage of the RVB tiles).
Files are opened in a thread pool (GDAL releases the GIL while it reads).
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.windows import Window

from engine.failures import is_gdal_path
from engine.grid import Bounds

SHOWN = 10  # files listed per problem before "and N more"
THREADS = 8  # files opened at once: I/O bound, more than the cores helps on network shares
LAST_BLOCK_PX = 64  # a JPEG 2000 file's last block is read at about this size (see below)
COMPARE_PX = 512  # overlaps are compared at most this many pixels a side
# BD ORTHO names carry the tile's kilometre coordinates: 33-2024-0410-6425-LA93-0M20-E080.jp2
_TILE_XY = re.compile(r"(?<!\d)(\d{3,4})-(\d{4})-LA93", re.IGNORECASE)
# GDAL lists a file's folder on each open to look for side-car files: with 1,500 tiles in a
# folder that is 1,500 listings of 1,500 names. Without it, side-cars (.aux.xml) are looked
# for by name, so a tile's nodata there is still found.
_OPEN_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "TRUE", "GDAL_NUM_THREADS": "1"}
_IO_ERRORS = (rasterio.errors.RasterioError, CPLE_BaseError, OSError)


def tile_key(path: str) -> str:
    """A tile's name across products: BD ORTHO's km coordinates, else the file stem."""
    found = _TILE_XY.search(Path(path).name)
    return f"{found.group(1)}-{found.group(2)}" if found else Path(path).stem


@dataclass(frozen=True)
class RasterFile:
    """One input file as GDAL sees it."""

    path: str
    crs: CRS
    bounds: Bounds
    res: tuple[float, float]
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def key(self) -> str:
        """The tile's name across products: BD ORTHO's km coordinates, else the file stem."""
        return tile_key(self.path)

    def describe(self) -> dict[str, Any]:
        """What identifies the file in the manifest's settings (name, size, time)."""
        stat = os.stat(self.path) if not is_gdal_path(self.path) else None
        return {
            "path": self.path,
            "size": stat.st_size if stat else None,
            "mtime_ns": stat.st_mtime_ns if stat else None,
        }


@dataclass
class Findings:
    """What the audit found: problems refuse the inputs, notes are only said."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def listing(items: Sequence[str], shown: int = SHOWN) -> str:
    """`a, b, c and N more`."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _cause(exc: BaseException) -> str:
    """GDAL's own line from an exception chain, rather than rasterio's 'Read failed'."""
    lines: list[str] = []
    item: BaseException | None = exc
    for _ in range(10):  # a chain, never a cycle
        if item is None:
            break
        text = str(item).strip()
        if text and "see previous exception" not in text.lower():
            lines.append(text.splitlines()[0])
        item = item.__cause__ or item.__context__
    line = lines[-1] if lines else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _read_last_block(src: rasterio.io.DatasetReader) -> None:
    """Read the file's last block (where a truncated file fails): at full resolution, or for
    JPEG 2000 from a reduced resolution (OpenJPEG still reads every byte of the tile, so a
    file short of even its last 2 bytes fails; 5 ms instead of 280 for a 1024 px block)."""
    block_h, block_w = src.block_shapes[0]
    row = ((src.height - 1) // block_h) * block_h
    col = ((src.width - 1) // block_w) * block_w
    window = Window(col, row, src.width - col, src.height - row)
    shape = None
    if src.driver.startswith("JP2"):
        scale = max(1.0, max(window.height, window.width) / LAST_BLOCK_PX)
        shape = (
            src.count,
            max(1, round(window.height / scale)),
            max(1, round(window.width / scale)),
        )
    src.read(window=window, out_shape=shape)


def _open_one(path: str) -> RasterFile | tuple[str, str]:
    """The file's description after reading its last block, or (kind, detail) of its fault."""
    try:
        with rasterio.Env(**_OPEN_OPTIONS), rasterio.open(path) as src:
            if src.crs is None:
                return ("crs", path)
            try:
                _read_last_block(src)
            except _IO_ERRORS as exc:
                return (
                    "read",
                    f"{path}: its last block cannot be read, truncated? ({_cause(exc)})",
                )
            return RasterFile(
                path,
                src.crs,
                tuple(src.bounds),
                src.res,
                src.width,
                src.height,
                src.count,
                src.dtypes[0],
                src.nodata,
            )
    except _IO_ERRORS as exc:
        return ("read", f"{path} cannot be read ({_cause(exc)})")


def open_files(
    products: Sequence[tuple[str, Sequence[str]]], findings: Findings
) -> list[list[RasterFile]]:
    """Open every file of every (label, paths) product once, in a thread pool; the files that
    can be used, per product. Unreadable files and files without a CRS become problems."""
    flat = [(what, path) for what, paths in products for path in paths]
    with ThreadPoolExecutor(max_workers=max(1, min(THREADS, len(flat)))) as pool:
        opened = list(pool.map(_open_one, [path for _, path in flat]))
    files: dict[str, list[RasterFile]] = {what: [] for what, _ in products}
    faults: dict[tuple[str, str], list[str]] = {}
    for (what, _), result in zip(flat, opened, strict=True):
        if isinstance(result, RasterFile):
            files[what].append(result)
        else:
            faults.setdefault((what, result[0]), []).append(result[1])
    for (what, kind), items in faults.items():
        if kind == "read":
            findings.problems.append(
                f"{what}: {len(items)} file(s) cannot be read; copy or download them again "
                f"(gdalinfo -checksum reads a file whole): {listing(items)}"
            )
        else:
            findings.problems.append(
                f"{what}: {len(items)} file(s) have no CRS; assign theirs (gdal_edit.py -a_srs): "
                + listing(items)
            )
    return [files[what] for what, _ in products]


def _nodata_text(value: float | None) -> str:
    return "no nodata" if value is None else f"nodata {value:g}"


def _same_key(value: Any) -> Any:
    """Values compared as equal: NaN nodata equals NaN."""
    return "nan" if isinstance(value, float) and math.isnan(value) else value


@dataclass(frozen=True)
class _Trait:
    """A property every tile of a mosaic must share: how to get it, say it, and fix it."""

    value: Callable[[RasterFile], Any]
    header: Callable[[Any], str]  # "are not {header} like ..."
    item: Callable[[Any], str]  # "name ({item})"
    fix: str


TRAITS = {
    "crs": _Trait(
        lambda f: f.crs,
        lambda v: f"in {v.to_string()}",
        lambda v: v.to_string(),
        "reproject them (gdalwarp) first",
    ),
    "dtype": _Trait(
        lambda f: f.dtype,
        str,
        str,
        "a mosaic has one data type: convert them (gdal_translate -ot) or remove them",
    ),
    "count": _Trait(
        lambda f: f.count,
        lambda v: f"of {v} band(s)",
        lambda v: f"{v} band(s)",
        "remove them or give every tile the same bands",
    ),
    "nodata": _Trait(
        lambda f: f.nodata,
        lambda v: f"of {_nodata_text(v)}",
        _nodata_text,
        "give every tile the same one (gdal_edit.py -a_nodata V, or -unsetnodata)",
    ),
}


def check_alike(
    files: Sequence[RasterFile], what: str, traits: Iterable[str], findings: Findings
) -> None:
    """The tiles whose CRS, data type, band count or nodata (`traits`) differ from most
    tiles', named with theirs, one line per trait."""
    for name in traits:
        trait = TRAITS[name]
        counts = Counter(_same_key(trait.value(f)) for f in files)
        if len(counts) < 2:
            continue
        usual = counts.most_common(1)[0][0]
        odd = [f for f in files if _same_key(trait.value(f)) != usual]
        model = next(f for f in files if _same_key(trait.value(f)) == usual)
        items = [f"{f.name} ({trait.item(trait.value(f))})" for f in odd]
        findings.problems.append(
            f"{what}: {len(odd)} tile(s) are not {trait.header(trait.value(model))} like "
            f"{model.name}: {listing(items)}; {trait.fix}"
        )


def check_min_bands(files: Sequence[RasterFile], what: str, least: int, findings: Findings) -> None:
    """Files with fewer bands than the product needs (RVB: 3)."""
    few = [f"{f.name} ({f.count} band(s))" for f in files if f.count < least]
    if few:
        findings.problems.append(
            f"{what}: {len(few)} file(s) have fewer than {least} bands: {listing(few)}"
        )


# ---- overlaps ----


def _overlap(a: RasterFile, b: RasterFile) -> Bounds | None:
    """The area two files share, if it is at least half a pixel both ways."""
    left, bottom = max(a.bounds[0], b.bounds[0]), max(a.bounds[1], b.bounds[1])
    right, top = min(a.bounds[2], b.bounds[2]), min(a.bounds[3], b.bounds[3])
    tol = 0.5 * min(a.res[0], a.res[1], b.res[0], b.res[1])
    if right - left > tol and top - bottom > tol:
        return (left, bottom, right, top)
    return None


def overlapping_pairs(files: Sequence[RasterFile]) -> list[tuple[RasterFile, RasterFile, Bounds]]:
    """Pairs of files (of one CRS) that overlap, found with an R-tree of their bounds."""
    from shapely import STRtree, box

    boxes = [box(*f.bounds) for f in files]
    hits = STRtree(boxes).query(boxes, predicate="intersects")  # (2, n) indexes
    pairs = []
    for i, j in zip(hits[0].tolist(), hits[1].tolist(), strict=True):
        if i < j:
            area = _overlap(files[i], files[j])
            if area is not None:
                pairs.append((files[i], files[j], area))
    return pairs


def _read_area(f: RasterFile, area: Bounds, shape: tuple[int, int]) -> np.ma.MaskedArray:
    col = (area[0] - f.bounds[0]) / f.res[0]
    row = (f.bounds[3] - area[3]) / f.res[1]
    width = (area[2] - area[0]) / f.res[0]
    height = (area[3] - area[1]) / f.res[1]
    window = Window(round(col), round(row), max(1, round(width)), max(1, round(height)))
    with rasterio.open(f.path) as src:
        return src.read(
            window=window,
            out_shape=(src.count, *shape),
            resampling=Resampling.nearest,
            masked=True,
        )


def _differ(pair: tuple[RasterFile, RasterFile, Bounds]) -> str:
    """How two files' pixels differ where both have data (decimated for large overlaps): ""
    when they do not, else a few words, or why they could not be compared."""
    a, b, area = pair
    px = max(a.res[0], b.res[0])
    height = max(1, round((area[3] - area[1]) / px))
    width = max(1, round((area[2] - area[0]) / px))
    scale = max(1.0, max(height, width) / COMPARE_PX)
    shape = (max(1, round(height / scale)), max(1, round(width / scale)))
    try:
        first, second = _read_area(a, area, shape), _read_area(b, area, shape)
    except _IO_ERRORS as exc:
        return f"not compared: {_cause(exc)}"
    if first.shape != second.shape:
        return "other bands"
    both = ~np.ma.getmaskarray(first).any(axis=0) & ~np.ma.getmaskarray(second).any(axis=0)
    differ = (np.ma.getdata(first) != np.ma.getdata(second))[:, both].any(axis=0)
    return f"{differ.mean():.0%} of the overlap differs" if differ.any() else ""


def short_pair(a: str, b: str) -> tuple[str, str]:
    """Two paths by their names, or by their paths below the folder they share when the
    names match."""
    if Path(a).name != Path(b).name or is_gdal_path(a) or is_gdal_path(b):
        return Path(a).name, Path(b).name
    common = os.path.commonpath([a, b])
    return os.path.relpath(a, common), os.path.relpath(b, common)


def _pair(a: RasterFile, b: RasterFile) -> str:
    return " and ".join(short_pair(a.path, b.path))


def check_overlaps(files: Sequence[RasterFile], what: str, findings: Findings) -> None:
    """Tiles that overlap: refused when their pixels differ there (the file order would decide
    which shows), said when they are the same (a duplicate delivered twice, say)."""
    if not files or len({f.crs for f in files}) > 1:
        return  # tiles in other CRSs are refused already
    pairs = overlapping_pairs(files)
    if not pairs:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(THREADS, len(pairs)))) as pool:
        verdicts = list(pool.map(_differ, pairs))
    differ = [f"{_pair(a, b)} ({v})" for (a, b, _), v in zip(pairs, verdicts, strict=True) if v]
    same = [_pair(a, b) for (a, b, _), v in zip(pairs, verdicts, strict=True) if not v]
    if differ:
        findings.problems.append(
            f"{what}: {len(differ)} pair(s) of tiles overlap with different pixels, so the order "
            f"of the files would decide which shows: {listing(differ)}; remove one of each pair"
        )
    if same:
        findings.notes.append(
            f"{what}: {len(same)} pair(s) of tiles overlap with the same pixels (taken as they "
            f"are): {listing(same)}"
        )


# ---- coverage ----


def _box_in(f: RasterFile, crs: CRS) -> tuple[Bounds, float]:
    """The file's bounds in `crs` and its pixel size there."""
    if f.crs == crs:
        return f.bounds, max(abs(f.res[0]), abs(f.res[1]))
    from rasterio.warp import transform_bounds

    box = tuple(transform_bounds(f.crs, crs, *f.bounds, densify_pts=21))
    return box, max((box[2] - box[0]) / f.width, (box[3] - box[1]) / f.height)


def check_coverage(
    tiles: Sequence[RasterFile], cover: Sequence[RasterFile], what: str, findings: Findings
) -> None:
    """The `tiles` (RVB) that `cover`'s files (elevation) leave partly or wholly uncovered,
    within half a pixel of either, named with the share missing."""
    if not tiles or not cover:
        return
    from shapely import STRtree, box, unary_union

    crs = Counter(f.crs for f in tiles).most_common(1)[0][0]  # the odd ones are refused
    placed = [_box_in(f, crs) for f in cover]
    tol = 0.5 * max(
        max(px for _, px in placed), max(max(abs(f.res[0]), abs(f.res[1])) for f in tiles)
    )
    boxes = [box(*b) for b, _ in placed]
    tree = STRtree(boxes)
    lacking: list[str] = []
    for tile in tiles:
        if tile.crs != crs:
            continue
        shape = box(*tile.bounds)
        near = tree.query(shape)
        union = unary_union([boxes[i] for i in near])
        if len(near) and shape.difference(union.buffer(tol, join_style="mitre")).area <= 0:
            continue
        left = shape.difference(union).area / shape.area if len(near) else 1.0
        lacking.append(f"{tile.name} ({left:.0%} uncovered)" if left < 0.995 else tile.name)
    if lacking:
        findings.problems.append(
            f"{what}: no data for {len(lacking)} RVB tile(s) or part of them: "
            f"{listing(lacking)}; add the missing tiles (or leave {what} out)"
        )
