"""A region's input files: globs, folders or lists per product, checked before any work.

IGN's BD ORTHO comes as two products with the same tile names in separate folders (RVB and
IRC), often with elevation tiles beside them. Every file is opened once here; unreadable files,
products without files, tiles of another CRS and tiles one product has and the other lacks are
all listed in one message, before a cluster starts or a model loads.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS

from engine.errors import InvalidInput
from engine.failures import is_gdal_path, user_path
from engine.grid import Bounds
from engine.region.settings import ProductInputs

RASTER_SUFFIXES = (".jp2", ".tif", ".tiff", ".vrt", ".img")
# BD ORTHO names carry the tile's kilometre coordinates: 33-2024-0410-6425-LA93-0M20-E080.jp2
_TILE_XY = re.compile(r"(?<!\d)(\d{3,4})-(\d{4})-LA93", re.IGNORECASE)
_SHOWN = 8  # names listed in a message before "and N more"


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

    @property
    def key(self) -> str:
        """The tile's name across products: BD ORTHO's km coordinates, else the file stem."""
        found = _TILE_XY.search(Path(self.path).name)
        return f"{found.group(1)}-{found.group(2)}" if found else Path(self.path).stem

    def describe(self) -> dict[str, Any]:
        """What identifies the file in the manifest's settings (name, size, time)."""
        stat = os.stat(self.path) if not is_gdal_path(self.path) else None
        return {
            "path": self.path,
            "size": stat.st_size if stat else None,
            "mtime_ns": stat.st_mtime_ns if stat else None,
        }


@dataclass(frozen=True)
class RegionInputs:
    """The files of each product, checked and matched."""

    rgb: tuple[RasterFile, ...] = ()
    irc: tuple[RasterFile, ...] = ()
    elevation: tuple[RasterFile, ...] = ()
    single: RasterFile | None = None

    @property
    def footprints(self) -> tuple[RasterFile, ...]:
        """The files whose footprints say where the data is (RVB, or the one raster)."""
        return (self.single,) if self.single else self.rgb

    def describe(self) -> list[dict[str, Any]]:
        files = [self.single] if self.single else [*self.rgb, *self.irc]
        return [f.describe() for f in (*files, *self.elevation)]


def expand(specs: tuple[str, ...], what: str, problems: list[str]) -> list[str]:
    """Files named by globs (`RVB/**/*.jp2`), folders (every raster inside, recursively) or
    paths, sorted, each once. What matches nothing is a problem, not silence."""
    found: list[str] = []
    for spec in specs:
        path = user_path(spec)
        if isinstance(path, str):  # a GDAL path: taken as it is
            found.append(path)
        elif path.is_dir():
            inside = sorted(
                str(p.absolute())
                for p in path.rglob("*")
                if p.suffix.lower() in RASTER_SUFFIXES and p.is_file()
            )
            if not inside:
                problems.append(
                    f"{what}: folder {path} holds no raster ({', '.join(RASTER_SUFFIXES)})"
                )
            found.extend(inside)
        elif glob.has_magic(str(path)):
            matched = sorted(
                os.path.abspath(p)
                for p in glob.glob(str(path), recursive=True)
                if os.path.isfile(p)
            )
            if not matched:
                problems.append(f"{what}: {spec} matches no file")
            found.extend(matched)
        elif path.is_file():
            found.append(str(path.absolute()))
        else:
            problems.append(f"{what}: {spec} does not exist")
    return list(dict.fromkeys(found))


def inspect(paths: list[str], what: str, problems: list[str]) -> list[RasterFile]:
    """Open every file once; unreadable ones and ones without a CRS become problems."""
    files: list[RasterFile] = []
    for path in paths:
        try:
            with rasterio.open(path) as src:
                if src.crs is None:
                    problems.append(f"{what}: {path} has no CRS")
                    continue
                files.append(
                    RasterFile(
                        path,
                        src.crs,
                        tuple(src.bounds),
                        src.res,
                        src.width,
                        src.height,
                        src.count,
                        src.dtypes[0],
                    )
                )
        except (rasterio.errors.RasterioError, CPLE_BaseError, OSError) as exc:
            problems.append(f"{what}: {path} cannot be read ({exc})")
    return files


def _one_crs(files: list[RasterFile], what: str, problems: list[str]) -> None:
    """All tiles of a mosaic in one CRS; the odd ones out are named."""
    if not files:
        return
    first = files[0].crs
    odd = [f for f in files if f.crs != first]
    if odd:
        names = ", ".join(f"{Path(f.path).name} ({f.crs.to_string()})" for f in odd[:_SHOWN])
        more = f" and {len(odd) - _SHOWN} more" if len(odd) > _SHOWN else ""
        problems.append(
            f"{what}: {len(odd)} tile(s) are not in {first.to_string()} like "
            f"{Path(files[0].path).name}: {names}{more}; reproject them (gdalwarp) first"
        )


def _missing(have: list[RasterFile], other: list[RasterFile], what: str, where: str) -> str | None:
    """The tiles `have` lists that `other` lacks, as one line, or None."""
    keys = {f.key for f in other}
    lacking = [f for f in have if f.key not in keys]
    if not lacking:
        return None
    names = ", ".join(Path(f.path).name for f in lacking[:_SHOWN])
    more = f" and {len(lacking) - _SHOWN} more" if len(lacking) > _SHOWN else ""
    return f"{what} lacks {len(lacking)} tile(s) that {where} has: {names}{more}"


def gather(products: ProductInputs) -> RegionInputs:
    """Every file of every product, opened and matched; InvalidInput lists all problems."""
    problems: list[str] = []
    if products.single:
        single = inspect(expand((products.single,), "--input", problems), "--input", problems)
        elevation = inspect(
            expand(products.elevation, "--elevation", problems), "--elevation", problems
        )
        _one_crs(elevation, "--elevation", problems)
        _raise(problems)
        return RegionInputs(single=single[0], elevation=tuple(elevation))
    rgb = inspect(expand(products.rgb, "--rgb", problems), "--rgb", problems)
    irc = inspect(expand(products.irc, "--irc", problems), "--irc", problems)
    elevation = inspect(
        expand(products.elevation, "--elevation", problems), "--elevation", problems
    )
    _one_crs(rgb + irc, "--rgb and --irc", problems)
    _one_crs(elevation, "--elevation", problems)
    problems += [
        f"--rgb: {Path(f.path).name} has {f.count} band(s), RVB needs 3" for f in rgb if f.count < 3
    ]
    if irc:
        for line in (
            _missing(rgb, irc, "--irc (IRC)", "--rgb (RVB)"),
            _missing(irc, rgb, "--rgb (RVB)", "--irc (IRC)"),
        ):
            if line:
                problems.append(line)
    _raise(problems)
    return RegionInputs(tuple(rgb), tuple(irc), tuple(elevation))


def _raise(problems: list[str]) -> None:
    if problems:
        lines = "\n  ".join(problems)
        raise InvalidInput(f"the region's inputs have {len(problems)} problem(s):\n  {lines}")
