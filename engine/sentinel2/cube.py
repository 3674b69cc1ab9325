"""A Sentinel-2 time series on one grid: the whole area, every date, stored on disk.

Layout of a cube directory (also the on-disk cache entry):

- ``data.npy``: int16 (T, 10, H, W), digital numbers with the processing-baseline offset
  already removed, 0 where no product covers a pixel;
- ``masks.npy``: uint8 (T, 2, H, W), snow then cloud probability (0..100, 0 is valid);
- ``series.json``: the grid, the T dates, and per date the items merged into it.

The arrays are opened as memory maps, so cutting super-patches out of a large area does not
read the whole series into memory.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InvalidInput
from engine.grid import Grid
from engine.sentinel2.prepare import SuperPatch

DATA_FILE = "data.npy"
MASKS_FILE = "masks.npy"
META_FILE = "series.json"
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class SeriesCube:
    """Every date of a Sentinel-2 series over a grid.

    Attributes:
        grid: the 10 m grid in the processing CRS.
        dates: acquisition dates (solar days), ascending, one per image.
        data: int16 (T, C, H, W) digital numbers, 0 = no data.
        masks: uint8 (T, 2, H, W), snow then cloud probability.
        superpatch_px: side of the super-patches cut by `superpatch`.
        info: provenance (source, year, items per date).
    """

    grid: Grid
    dates: list[dt.date]
    data: np.ndarray
    masks: np.ndarray
    superpatch_px: int = 40
    info: dict[str, Any] = field(default_factory=dict)

    def superpatch(self, x: float, y: float) -> SuperPatch:
        """The `superpatch_px` square centred on (x, y) (processing CRS), every usable date.

        A date that leaves any pixel of the square without data (the edge of a swath, an area
        no product of that day covers) is left out: FLAIR-2's super-patches never had holes,
        and a hole would enter the monthly means as zeros.

        Raises:
            InvalidInput: the square leaves the grid.
        """
        window = self.grid.centred_window(x, y, self.superpatch_px)
        if self.grid.clip(window) != window:
            raise InvalidInput(
                f"the {self.superpatch_px} px super-patch around ({x:.1f}, {y:.1f}) leaves the "
                f"Sentinel-2 grid {self.grid.bounds}; load the series for an area that contains "
                "this point"
            )
        rows, cols = window.toslices()
        data = np.asarray(self.data[:, :, rows, cols])
        masks = np.asarray(self.masks[:, :, rows, cols])
        complete = np.all(np.any(data != 0, axis=1), axis=(1, 2))
        keep = np.flatnonzero(complete)
        return SuperPatch(
            data=data[keep].astype(np.float32),
            masks=masks[keep],
            dates=[self.dates[i] for i in keep],
        )

    @property
    def num_dates(self) -> int:
        """T."""
        return len(self.dates)

    @classmethod
    def empty(cls, grid: Grid, bands: int, superpatch_px: int, info: dict[str, Any]) -> SeriesCube:
        """A cube without dates (no product found); every super-patch comes out empty."""
        h, w = grid.shape
        return cls(
            grid,
            [],
            np.zeros((0, bands, h, w), np.int16),
            np.zeros((0, 2, h, w), np.uint8),
            superpatch_px,
            info,
        )

    @classmethod
    def allocate(
        cls,
        directory: Path,
        grid: Grid,
        dates: list[dt.date],
        bands: int,
        superpatch_px: int,
        info: dict[str, Any],
    ) -> SeriesCube:
        """A zero-filled, writable cube backed by memory-mapped files in `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        h, w = grid.shape
        t = len(dates)
        data = np.lib.format.open_memmap(
            directory / DATA_FILE, mode="w+", dtype=np.int16, shape=(t, bands, h, w)
        )
        masks = np.lib.format.open_memmap(
            directory / MASKS_FILE, mode="w+", dtype=np.uint8, shape=(t, 2, h, w)
        )
        return cls(grid, list(dates), data, masks, superpatch_px, info)

    def save_metadata(self, directory: Path) -> None:
        """Flush the arrays and write ``series.json`` (written last: it marks a complete cube)."""
        for arr in (self.data, self.masks):
            if isinstance(arr, np.memmap):
                arr.flush()
        meta = {
            "format": FORMAT_VERSION,
            "grid": self.grid.to_dict(),
            "dates": [d.isoformat() for d in self.dates],
            "superpatch_px": self.superpatch_px,
            "info": self.info,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1, default=str))

    @classmethod
    def open(cls, directory: Path) -> SeriesCube:
        """Open a complete cube directory read-only.

        Raises:
            InvalidInput: the directory is not a complete cube of this format.
        """
        directory = Path(directory)
        try:
            meta = json.loads((directory / META_FILE).read_text())
            if meta.get("format") != FORMAT_VERSION:
                raise InvalidInput(f"{directory} holds a cube of another format version")
            dates = [dt.date.fromisoformat(d) for d in meta["dates"]]
            grid = Grid.from_dict(meta["grid"])
            data = np.load(directory / DATA_FILE, mmap_mode="r")
            masks = np.load(directory / MASKS_FILE, mmap_mode="r")
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInput(
                f"{directory} is not a readable Sentinel-2 series ({exc}); delete it to reload"
            ) from exc
        if data.shape[0] != len(dates) or data.shape[2:] != grid.shape:
            raise InvalidInput(f"{directory}: arrays do not match series.json; delete it to reload")
        return cls(grid, dates, data, masks, int(meta["superpatch_px"]), meta.get("info", {}))
