"""A region's input files: globs, folders or lists per product, found and audited before any work.

IGN's BD ORTHO comes as two products with the same tile names in separate folders (RVB and
IRC), often with elevation tiles beside them. Globs and folders are walked here, following
links but never a loop (a link back to a folder above it), each real file taken once; then
`engine.region.audit` opens every file once and lists every problem of every product in one
message, before a mosaic is written or a model loads.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import InvalidInput
from engine.failures import is_gdal_path, user_path
from engine.region.audit import (
    Findings,
    RasterFile,
    check_alike,
    check_coverage,
    check_min_bands,
    check_overlaps,
    listing,
    open_files,
    short_pair,
    tile_key,
)
from engine.region.products import (
    ELEVATION,
    PRODUCTS,
    Product,
    base_product,
    elevation_product,
    image_products,
)
from engine.region.settings import ProductInputs

RASTER_SUFFIXES = (".jp2", ".tif", ".tiff", ".vrt", ".img")

__all__ = [
    "RASTER_SUFFIXES",
    "RasterFile",
    "RegionInputs",
    "expand",
    "gather",
]


@dataclass(frozen=True)
class RegionInputs:
    """The files of each product (by its key in `engine.region.products`), checked and matched;
    `notes` says what was accepted with a remark (files reached twice, loops not followed,
    tiles overlapping with the same pixels)."""

    files: Mapping[str, tuple[RasterFile, ...]] = field(default_factory=dict)
    single: RasterFile | None = None
    notes: tuple[str, ...] = ()

    def of(self, key: str) -> tuple[RasterFile, ...]:
        """The files of product `key` (none: empty)."""
        return tuple(self.files.get(key, ()))

    @property
    def footprints(self) -> tuple[RasterFile, ...]:
        """The files whose footprints say where the data is (the base product, or the one
        raster)."""
        return (self.single,) if self.single else self.of(base_product().key)

    @property
    def elevation(self) -> tuple[RasterFile, ...]:
        """The files of the elevation product (its own mosaic, the E channel)."""
        return self.of(elevation_product().key)

    def describe(self) -> list[dict[str, Any]]:
        if self.single:
            files = [self.single]
        else:
            files = [f for p in image_products() for f in self.of(p.key)]
        return [f.describe() for f in (*files, *self.elevation)]


class _Walk:
    """Files under `root` matching glob `parts` (`**` is any depth), following links to folders
    except loops: a link to a folder above it or on the way down to it is named, not followed
    (Python's glob follows it until the OS gives up: 81 copies of every path)."""

    def __init__(self, parts: Sequence[str], suffixes: tuple[str, ...] = (), hidden: bool = False):
        self.parts = (*parts, "*") if parts[-1] == "**" else tuple(parts)  # `dir/**`: files
        self.suffixes = suffixes
        self.hidden = hidden
        self.files: list[str] = []
        self.loops: dict[str, str] = {}  # a loop's link (by its real place) -> as found

    def run(self, root: str) -> list[str]:
        self._walk(root, 0, (os.path.realpath(root),))
        return self.files

    def _visible(self, name: str, part: str) -> bool:
        return self.hidden or not name.startswith(".") or part.startswith(".")

    def _walk(self, folder: str, i: int, chain: tuple[str, ...]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return  # unreadable or vanished: glob says nothing either
        part, last = self.parts[i], i == len(self.parts) - 1
        if part == "**":
            self._walk(folder, i + 1, chain)
            for entry in entries:
                inner = self._enter(entry, part, chain)
                if inner:
                    self._walk(entry.path, i, inner)
            return
        for entry in entries:
            if not matches(entry.name, part) or not self._visible(entry.name, part):
                continue
            if last:
                if entry.is_file() and (
                    not self.suffixes or entry.name.lower().endswith(self.suffixes)
                ):
                    self.files.append(entry.path)
                continue
            inner = self._enter(entry, part, chain)
            if inner:
                self._walk(entry.path, i + 1, inner)

    def _enter(self, entry: os.DirEntry, part: str, chain: tuple[str, ...]) -> tuple[str, ...]:
        """The chain of real folders below `entry`, or () when it is no folder or a loop."""
        if not self._visible(entry.name, part) or not entry.is_dir():
            return ()
        real = os.path.realpath(entry.path)
        if real in chain or os.path.commonpath([chain[-1], real]) == real:  # above it
            place = os.path.join(chain[-1], entry.name)  # the same link reached twice: once
            self.loops.setdefault(place, f"{entry.path} -> {real}")
            return ()
        return (*chain, real)


def alternatives(part: str) -> list[str]:
    """`*.{jp2,tif}` -> `*.jp2`, `*.tif`: the shell's braces, which `fnmatch` lacks, so one
    pattern finds the tiles of either format."""
    start = part.find("{")
    end = part.find("}", start + 1)
    if start < 0 or end < 0:
        return [part]
    head, tail = part[:start], part[end + 1 :]
    return [
        a for choice in part[start + 1 : end].split(",") for a in alternatives(head + choice + tail)
    ]


def matches(name: str, part: str) -> bool:
    """Whether a file or folder name matches one glob part (braces allowed)."""
    return any(fnmatch.fnmatchcase(name, p) for p in alternatives(part))


def _split(pattern: str) -> tuple[str, list[str]]:
    """The folder a glob starts from (its parts before the first wildcard) and the rest."""
    parts = Path(pattern).parts
    for i, part in enumerate(parts):
        if glob.has_magic(part) or "{" in part:
            return (str(Path(*parts[:i])) if i else "."), list(parts[i:])
    return pattern, []


def expand(specs: Sequence[str], what: str, findings: Findings) -> list[str]:
    """Files named by globs (`RVB/**/*.jp2`), folders (every raster inside, recursively) or
    paths, sorted, each real file once. What matches nothing is a problem; files reached under
    two paths (links) and loops not followed are noted."""
    found: list[str] = []
    loops: dict[str, str] = {}
    for spec in specs:
        path = user_path(spec)
        if isinstance(path, str):  # a GDAL path: taken as it is
            found.append(path)
        elif path.is_dir():
            walk = _Walk(("**", "*"), RASTER_SUFFIXES, hidden=True)
            inside = sorted(str(Path(p).absolute()) for p in walk.run(str(path)))
            loops |= walk.loops
            if not inside:
                findings.problems.append(
                    f"{what}: folder {path} holds no raster ({', '.join(RASTER_SUFFIXES)})"
                )
            found.extend(inside)
        elif glob.has_magic(str(path)) or "{" in str(path):
            root, parts = _split(str(path))
            walk = _Walk(parts)
            matched = sorted(os.path.abspath(p) for p in walk.run(root))
            loops |= walk.loops
            if not matched:
                findings.problems.append(f"{what}: {spec} matches no file")
            found.extend(matched)
        elif path.is_file():
            found.append(str(path.absolute()))
        else:
            findings.problems.append(f"{what}: {spec} does not exist")
    if loops:
        findings.notes.append(
            f"{what}: {len(loops)} link(s) lead back to a folder above them (a loop), not "
            f"followed: {listing(list(loops.values()))}"
        )
    return _once(list(dict.fromkeys(found)), what, findings)


def real_paths(paths: Iterable[str]) -> list[str]:
    """Local paths with links resolved; GDAL paths as they are."""
    return [p if is_gdal_path(p) else os.path.realpath(p) for p in paths]


def _once(paths: list[str], what: str, findings: Findings) -> list[str]:
    """Each real file once, by its own path if that reached it, else by the first that did;
    the other paths are noted."""
    groups: dict[str, list[str]] = {}
    for path, real in zip(paths, real_paths(paths), strict=True):
        groups.setdefault(real, []).append(path)
    kept: list[str] = []
    again: list[str] = []
    for real, reached in groups.items():
        chosen = real if real in reached else reached[0]
        kept.append(chosen)
        for path in reached:
            if path != chosen:
                shown, before = short_pair(path, chosen)
                again.append(f"{shown} (the same file as {before})")
    if again:
        findings.notes.append(
            f"{what}: {len(again)} file(s) reached twice (through links), taken once: "
            + listing(again)
        )
    order = {path: i for i, path in enumerate(paths)}
    return sorted(kept, key=order.__getitem__)  # the order they were found in


def _shared(found: Sequence[tuple[str, list[str]]], findings: Findings) -> None:
    """Files given to two products (a link or a pattern reaching the other product's folder)."""
    owners: dict[str, list[tuple[str, str]]] = {}
    for what, paths in found:
        for path, real in zip(paths, real_paths(paths), strict=True):
            owners.setdefault(real, []).append((what, path))
    both = [o for o in owners.values() if len(o) > 1]
    if both:
        example = " is ".join(f"{path} ({what})" for what, path in both[0])
        names = [f"{Path(o[0][1]).name} ({' and '.join(w for w, _ in o)})" for o in both]
        findings.problems.append(
            f"{len(both)} file(s) are in two products at once: {listing(names)} ({example}); "
            "narrow the patterns (or remove the link) so each product finds its own files"
        )


def _missing(have: list[RasterFile], other: list[str], what: str, where: str) -> str | None:
    """The tiles `have` lists that `other`'s files (readable or not) lack, as one line."""
    keys = {tile_key(path) for path in other}
    lacking = [f.name for f in have if f.key not in keys]
    if not lacking:
        return None
    return f"{what} lacks {len(lacking)} tile(s) that {where} has: {listing(lacking)}"


def gather(products: ProductInputs) -> RegionInputs:
    """Every file of every product found, opened once and audited, by the rules of each
    product's role (`engine.region.products`); InvalidInput lists every problem of every
    product in one message."""
    findings = Findings()
    if products.single:
        given = [("--input", (products.single,))]
        given += [(p.option, products.of(p.key)) for p in PRODUCTS if p.role == ELEVATION]
    else:
        given = [(p.option, products.of(p.key)) for p in PRODUCTS]
    found = [(what, expand(spec, what, findings)) for what, spec in given if spec]
    _shared(found, findings)
    opened = dict(zip((what for what, _ in found), open_files(found, findings), strict=True))
    paths = dict(found)
    files = {p.key: opened.get(p.option, []) for p in PRODUCTS}
    images = [p for p in image_products() if files[p.key]]
    base = base_product()
    check_alike(
        [f for p in images for f in files[p.key]],
        " and ".join(p.option for p in images) or base.option,
        ("crs", "dtype"),
        findings,
    )
    for product in PRODUCTS:
        _audit_product(product, files[product.key], findings)
    for product in images:  # a joined product has the base's tiles, and only those
        if product is not base:
            for line in (
                _missing(files[base.key], paths[product.option], product.what, base.what),
                _missing(files[product.key], paths[base.option], base.what, product.what),
            ):
                if line:
                    findings.problems.append(line)
    for product in PRODUCTS:
        if product.role == ELEVATION:
            check_coverage(files[base.key], files[product.key], product.option, findings)
    for product in PRODUCTS:
        check_overlaps(files[product.key], product.option, findings)
    if findings.problems:
        lines = "\n  ".join(findings.problems + [f"(noted: {n})" for n in findings.notes])
        raise InvalidInput(
            f"the region's inputs have {len(findings.problems)} problem(s):\n  {lines}"
        )
    kept = {key: tuple(f) for key, f in files.items() if f}
    single = opened.get("--input", [])
    return RegionInputs(kept, single[0] if single else None, tuple(findings.notes))


def _audit_product(product: Product, files: list[RasterFile], findings: Findings) -> None:
    """The checks of one product's files among themselves: enough bands, one band count and
    nodata; the elevation's own grid also one CRS and data type (the image products share
    theirs, checked together)."""
    traits: tuple[str, ...] = ("count", "nodata")
    if product.role == ELEVATION:
        traits = ("crs", "dtype", *traits)
    if product.min_bands > 1:
        check_min_bands(files, product.what, product.min_bands, findings)
        enough = [f for f in files if f.count >= product.min_bands]
        check_alike(enough, product.option, ("count",), findings)
        traits = tuple(t for t in traits if t != "count")
    check_alike(files, product.option, traits, findings)
