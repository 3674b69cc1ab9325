"""Sentinel-2 super-patches from a FLAIR-2 dataset folder, for evaluation on the benchmark.

The folder holds what IGN distributes (names as in FLAIR-2)::

    flair_aerial_<split>/<domain>/<zone>/img/IMG_xxxxxx.tif
    flair_sen_<split>/<domain>/<zone>/sen/SEN2_sp_<domain>-<zone>_{data.npy,masks.npy,products.txt}
    flair-2_centroids_sp_to_patch.json     IMG_xxxxxx.tif -> [row, col] in its super-area
    flair-2_aerial_metadata.json           (optional) IMG_xxxxxx -> camera, date, centroid...

As in the official dataset code, a patch belongs to the super-area stored under the same
``<domain>/<zone>`` folders as the patch itself (the two folders above ``img/`` and ``sen/``).
When the aerial images are not in the folder, the ``domain`` and ``zone`` fields of the patch's
metadata record are used instead. The crop is ``[row - 20 : row + 20, col - 20 : col + 20]``
of the super-area arrays; the dates come from characters 15..18 (MMDD) of each product name
with the year forced to 2021, as FLAIR-2 does.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputNotFound, InvalidInput
from engine.sentinel2.base import Sentinel2Source
from engine.sentinel2.prepare import SuperPatch, in_reference_year
from engine.sentinel2.settings import FLAIR2

CENTROIDS_FILE = "flair-2_centroids_sp_to_patch.json"
FLAIR_YEAR = FLAIR2.reference_year  # the year FLAIR-2 forces on its products: its calendar


def product_date(name: str, year: int = FLAIR_YEAR) -> dt.date:
    """The date of a product name: MMDD at characters 15..18, in `year`.

    Raises:
        InvalidInput: the name is too short or those characters are not a date.
    """
    mmdd = name[15:19]
    try:
        return in_reference_year(dt.date(2000, int(mmdd[:2]), int(mmdd[2:])), year)
    except ValueError as exc:
        raise InvalidInput(
            f"Sentinel-2 product name {name!r} has no MMDD date at characters 15..18"
        ) from exc


def read_products(path: Path, year: int = FLAIR_YEAR) -> list[dt.date]:
    """The dates of a ``*_products.txt`` file, one per non-empty line."""
    names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    return [product_date(n, year) for n in names]


def _area_key(path: Path) -> tuple[str, str]:
    """(domain, zone): the two folders above the file's own folder (``img``/``sen``)."""
    parts = path.parts
    if len(parts) < 4:
        raise InvalidInput(f"{path} is not inside <domain>/<zone>/<folder>/ as FLAIR lays it out")
    return parts[-4], parts[-3]


class FlairFolderSource(Sentinel2Source):
    """Super-patches of FLAIR patches, by patch name."""

    serves_patches = True

    def __init__(
        self, root: Path, *, superpatch_px: int = 40, cache_dir: Path | None = None
    ) -> None:
        super().__init__(cache_dir)
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputNotFound(f"the FLAIR dataset folder {self.root} does not exist")
        self.superpatch_px = superpatch_px

    @property
    def source_id(self) -> str:
        return f"flair:{self.root}"

    # indexes (built on first use) ----------------------------------------------------------
    @cached_property
    def centroids(self) -> dict[str, list[int]]:
        """Patch file name -> [row, col] of its centre in its super-area."""
        path = self.root / CENTROIDS_FILE
        if not path.exists():
            path = next(self.root.rglob(CENTROIDS_FILE), path)
        if not path.exists():
            raise InputNotFound(f"{self.root} holds no {CENTROIDS_FILE}; it comes with FLAIR-2")
        return json.loads(path.read_text())

    @cached_property
    def images(self) -> dict[str, tuple[str, str]]:
        """Patch file name -> (domain, zone), from the aerial images present in the folder."""
        return {p.name: _area_key(p) for p in self.root.rglob("IMG_*.tif")}

    @cached_property
    def super_areas(self) -> dict[tuple[str, str], Path]:
        """(domain, zone) -> the super-area's ``*_data.npy``."""
        found: dict[tuple[str, str], Path] = {}
        for path in sorted(self.root.rglob("*_data.npy")):
            key = _area_key(path)
            if key in found:
                raise InvalidInput(
                    f"two Sentinel-2 super-areas for {'/'.join(key)}: {found[key]} and {path}"
                )
            found[key] = path
        return found

    @cached_property
    def metadata(self) -> dict[str, dict[str, Any]]:
        """Aerial metadata records by patch name without extension (empty when absent)."""
        for path in sorted(self.root.rglob("*metadata*.json")):
            return json.loads(path.read_text())
        return {}

    # public --------------------------------------------------------------------------------
    def patch_metadata(self, patch_name: str) -> dict[str, Any]:
        """The aerial metadata record of a patch (camera, date, time, centroid x/y/z...).

        Raises:
            InputNotFound: no metadata file, or no record for this patch.
        """
        stem = Path(patch_name).stem
        if stem not in self.metadata:
            raise InputNotFound(
                f"no aerial metadata for {stem} in {self.root} (flair-2_aerial_metadata.json)"
            )
        return self.metadata[stem]

    def area_of(self, patch_name: str) -> tuple[str, str]:
        """The (domain, zone) super-area of a patch."""
        name = _patch_file_name(patch_name)
        if name in self.images:
            return self.images[name]
        record = self.metadata.get(Path(name).stem, {})
        if "domain" in record and "zone" in record:
            return str(record["domain"]), str(record["zone"])
        raise InputNotFound(
            f"cannot tell the domain and zone of {name}: it is not under {self.root} "
            "(<domain>/<zone>/img/) and its metadata record has no domain/zone"
        )

    def superpatch_for_patch(self, patch_name: str) -> SuperPatch:
        """The super-patch of a FLAIR patch, every date of its super-area.

        Args:
            patch_name: ``IMG_xxxxxx.tif`` (a path or a name without extension also works).

        Raises:
            InputNotFound: the patch, its centre or its super-area files are missing.
            InvalidInput: the crop leaves the super-area, or the files disagree in length.
        """
        name = _patch_file_name(patch_name)
        if name not in self.centroids:
            raise InputNotFound(f"{name} is not in {CENTROIDS_FILE}")
        key = self.area_of(name)
        data_path = self.super_areas.get(key)
        if data_path is None:
            raise InputNotFound(
                f"no Sentinel-2 super-area (*_data.npy) under {'/'.join(key)} in {self.root}"
            )
        stem = data_path.name[: -len("_data.npy")]
        masks_path = data_path.with_name(stem + "_masks.npy")
        products_path = data_path.with_name(stem + "_products.txt")
        for path in (masks_path, products_path):
            if not path.exists():
                raise InputNotFound(f"{path} is missing beside {data_path.name}")
        data = np.load(data_path, mmap_mode="r")
        masks = np.load(masks_path, mmap_mode="r")
        dates = read_products(products_path)
        if not (data.shape[0] == masks.shape[0] == len(dates)):
            raise InvalidInput(
                f"{stem}: {data.shape[0]} images, {masks.shape[0]} masks and {len(dates)} "
                "products; the three files must list the same dates"
            )
        row, col = (int(v) for v in self.centroids[name])
        half = self.superpatch_px // 2
        r0, c0 = row - half, col - half
        h, w = data.shape[2:]
        if r0 < 0 or c0 < 0 or r0 + self.superpatch_px > h or c0 + self.superpatch_px > w:
            raise InvalidInput(
                f"{name}: the {self.superpatch_px} px crop around [{row}, {col}] leaves the "
                f"super-area of {h} x {w} px"
            )
        size = self.superpatch_px
        window = (slice(None), slice(None), slice(r0, r0 + size), slice(c0, c0 + size))
        return SuperPatch(
            data=np.asarray(data[window], dtype=np.float32),
            masks=np.asarray(masks[window]),
            dates=dates,
        )


def _patch_file_name(patch_name: str) -> str:
    name = Path(patch_name).name
    return name if name.lower().endswith(".tif") else name + ".tif"
