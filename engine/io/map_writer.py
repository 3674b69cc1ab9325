"""Writing the land-cover map and its companions without ever leaving a half-written file.

Every raster is written under a hidden temporary name in the destination folder; `commit`
adds overviews, the colour table and sidecars, then renames everything into place. `abort`
(on error, cancel or signal) removes the temporaries.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from engine.classes import NODATA_CODE, class_name
from engine.errors import OutputError
from engine.grid import Grid
from engine.io import style

log = logging.getLogger(__name__)

BLOCK_PX = 512
RASTER_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class OutputPaths:
    """Destinations asked for; only `classes` is required."""

    classes: Path
    confidence: Path | None = None
    probabilities: Path | None = None

    def rasters(self) -> list[tuple[str, Path]]:
        out = [("output", self.classes)]
        if self.confidence:
            out.append(("confidence", self.confidence))
        if self.probabilities:
            out.append(("probabilities", self.probabilities))
        return out


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def _profile(grid: Grid, count: int) -> dict:
    big = grid.width * grid.height * count > 3_500_000_000
    return {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": "uint8",
        "crs": grid.crs,
        "transform": grid.transform,
        "tiled": True,
        "blockxsize": BLOCK_PX,
        "blockysize": BLOCK_PX,
        "compress": "deflate",
        "predictor": 1,
        "bigtiff": "YES" if big else "IF_SAFER",
        "interleave": "band",
    }


@dataclass
class MapWriter:
    """Owns the output datasets while a run writes them (one writer thread).

    Destinations are checked by the caller before any work (`engine.io.destination`)."""

    paths: OutputPaths
    grid: Grid
    probability_codes: tuple[int, ...] = ()
    overwrite: bool = False
    _open: dict[str, rasterio.io.DatasetWriter] = field(default_factory=dict)
    _temps: dict[str, Path] = field(default_factory=dict)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))

    def __post_init__(self) -> None:
        try:
            for key, path in self.paths.rasters():
                temp = _temporary(Path(path))
                self._temps[key] = temp
                count = len(self.probability_codes) if key == "probabilities" else 1
                profile = _profile(self.grid, count)
                if key == "output":
                    profile["nodata"] = NODATA_CODE
                self._open[key] = rasterio.open(temp, "w", **profile)
            self._open["output"].write_colormap(1, style.colormap())
        except rasterio.errors.RasterioError as exc:
            self.abort()
            raise OutputError(f"cannot create {self.paths.classes}: {exc}") from None

    def write(
        self,
        window: Window,
        codes: np.ndarray,
        confidence: np.ndarray | None = None,
        probabilities: np.ndarray | None = None,
    ) -> None:
        """Write one core: codes (h, w), confidence (h, w), probabilities (K, h, w)."""
        self._open["output"].write(codes, 1, window=window)
        self.counts += np.bincount(codes.ravel(), minlength=256)[:256]
        if confidence is not None and "confidence" in self._open:
            self._open["confidence"].write(confidence, 1, window=window)
        if probabilities is not None and "probabilities" in self._open:
            self._open["probabilities"].write(probabilities, window=window)

    def commit(self, overview_resampling: Resampling = Resampling.mode) -> dict[str, str]:
        """Finish every file (tags, overviews, sidecars) and move it into place."""
        out = self._open["output"]
        out.set_band_description(1, "FLAIR land cover")
        out.update_tags(1, **{f"CLASS_{c}": class_name(c) for c in range(1, 20)})
        out.update_tags(NODATA="0", CLASSES="FLAIR nomenclature, codes 1-19, 0 = no data")
        if "probabilities" in self._open:
            for i, code in enumerate(self.probability_codes, start=1):
                self._open["probabilities"].set_band_description(i, f"p({code} {class_name(code)})")
        if "confidence" in self._open:
            self._open["confidence"].set_band_description(1, "top class probability x 255")
        for ds in self._open.values():
            ds.close()
        self._open.clear()
        factors = _overview_factors(self.grid)
        with rasterio.Env(COMPRESS_OVERVIEW="DEFLATE", GDAL_TIFF_OVR_BLOCKSIZE=str(BLOCK_PX)):
            for key, temp in self._temps.items():
                if factors:
                    with rasterio.open(temp, "r+") as ds:
                        how = overview_resampling if key == "output" else Resampling.average
                        ds.build_overviews(factors, how)
        final: dict[str, str] = {}
        main = Path(self.paths.classes)
        sidecars = {
            main.with_suffix(".qml"): style.qml(),
            main.with_name(main.name + ".aux.xml"): style.pam_xml(),
        }
        for path, text in sidecars.items():
            temp = _temporary(path)
            temp.write_text(text)
            os.replace(temp, path)
        for key, path in self.paths.rasters():
            stale = Path(path).with_name(Path(path).name + ".aux.xml")
            if key != "output" and stale.exists():
                stale.unlink()
            os.replace(self._temps[key], path)
            final[key] = str(path)
        self._temps.clear()
        final["style"] = str(main.with_suffix(".qml"))
        return final

    def abort(self) -> None:
        """Close and delete every temporary file; safe to call more than once."""
        for ds in self._open.values():
            with contextlib.suppress(Exception):
                ds.close()
        self._open.clear()
        for temp in self._temps.values():
            for leftover in (
                temp,
                temp.with_name(temp.name + ".aux.xml"),
                temp.with_name(temp.name + ".ovr"),
            ):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        self._temps.clear()


def _overview_factors(grid: Grid) -> list[int]:
    factors = []
    f = 2
    while max(grid.width, grid.height) / f >= 256:
        factors.append(f)
        f *= 2
    return factors
