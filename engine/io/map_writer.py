"""Writing the land-cover map and its companions without ever leaving a half-written file.

Each raster is first written block by block into a hidden working file; `finish` then copies
it into a Cloud-Optimised GeoTIFF (DEFLATE, 512 px blocks, overviews) under the temporary
name its destination claimed (`engine.io.destination`), and writes the `.qml` and `.aux.xml`
sidecars likewise. The copy lays every block out once, in order: the file is as small as
`gdal_translate` makes it and byte-identical from run to run, whatever order GDAL's block
cache flushed the working file in. Nothing reaches a final name until the run commits.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from engine.classes import NODATA_CODE, class_name
from engine.failures import io_errors, write_failure
from engine.grid import Grid
from engine.io import style
from engine.io.destination import Destinations, OutputPaths

BLOCK_PX = 512
RASTER_SUFFIXES = (".tif", ".tiff")


def sidecars(classes: Path) -> tuple[Path, Path]:
    """The style and category-name files written beside the land-cover map."""
    classes = Path(classes)
    return classes.with_suffix(".qml"), classes.with_name(classes.name + ".aux.xml")


def claim_rasters(paths: OutputPaths, destinations: Destinations) -> None:
    """Claim the map, its sidecars and the optional rasters before any work (map first)."""
    for kind, path in paths.rasters():
        destinations.claim(path, f"{kind} raster", RASTER_SUFFIXES)
        if kind != "output":  # a PAM file of an older raster there would describe the old one
            destinations.replace_stale(Path(path).with_name(Path(path).name + ".aux.xml"))
    for path in sidecars(paths.classes):
        destinations.claim(path, "style sidecar")


def _working(temp: Path) -> Path:
    return temp.with_name(temp.name + ".work.tif")


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
        # fast compression: the COG copy compresses properly, and closing a dataset (which
        # flushes GDAL's cache while holding the GIL, delaying a signal) stays short
        "compress": "deflate",
        "zlevel": 1,
        "predictor": 1,
        "bigtiff": "YES" if big else "IF_SAFER",
        "interleave": "band",
    }


@dataclass
class MapWriter:
    """Owns the output datasets while a run writes them (one writer thread).

    The destinations were claimed before any work (`claim_rasters`)."""

    paths: OutputPaths
    grid: Grid
    destinations: Destinations
    probability_codes: tuple[int, ...] = ()
    _open: dict[str, rasterio.io.DatasetWriter] = field(default_factory=dict)
    _work: dict[str, Path] = field(default_factory=dict)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))

    def __post_init__(self) -> None:
        for key, path in self.paths.rasters():
            work = _working(self.destinations.temporary(path))
            self._work[key] = work
            count = len(self.probability_codes) if key == "probabilities" else 1
            profile = _profile(self.grid, count)
            if key == "output":
                profile["nodata"] = NODATA_CODE
            try:
                self._open[key] = rasterio.open(work, "w", **profile)
            except io_errors() as exc:
                self.close()
                raise write_failure(exc, path) from None
        self._open["output"].write_colormap(1, style.colormap())

    @property
    def written(self) -> dict[str, Path]:
        """The temporary file of each finished raster (valid after `finish`)."""
        return {key: self.destinations.temporary(path) for key, path in self.paths.rasters()}

    def write(
        self,
        window: Window,
        codes: np.ndarray,
        confidence: np.ndarray | None = None,
        probabilities: np.ndarray | None = None,
    ) -> None:
        """Write one core: codes (h, w), confidence (h, w), probabilities (K, h, w)."""
        try:
            self._open["output"].write(codes, 1, window=window)
            if confidence is not None and "confidence" in self._open:
                self._open["confidence"].write(confidence, 1, window=window)
            if probabilities is not None and "probabilities" in self._open:
                self._open["probabilities"].write(probabilities, window=window)
        except io_errors() as exc:
            raise write_failure(exc, self.paths.classes) from None
        self.counts += np.bincount(codes.ravel(), minlength=256)[:256]

    def finish(self) -> None:
        """Tags and descriptions, then each raster copied into its final layout (COG with
        overviews: mode for classes, average for probabilities) and the sidecars written."""
        out = self._open["output"]
        out.set_band_description(1, "FLAIR land cover")
        out.update_tags(1, **{f"CLASS_{c}": class_name(c) for c in range(1, 20)})
        out.update_tags(NODATA="0", CLASSES="FLAIR nomenclature, codes 1-19, 0 = no data")
        if "probabilities" in self._open:
            for i, code in enumerate(self.probability_codes, start=1):
                name = f"p({code} {class_name(code)}) (%)"
                self._open["probabilities"].set_band_description(i, name)
        if "confidence" in self._open:
            self._open["confidence"].set_band_description(1, "top class probability (%)")
        for key, path in self.paths.rasters():
            try:
                self._open.pop(key).close()
                with rasterio.Env(GDAL_PAM_ENABLED="NO"):
                    rasterio.shutil.copy(
                        self._work[key],
                        self.destinations.temporary(path),
                        driver="COG",
                        COMPRESS="DEFLATE",
                        BLOCKSIZE=BLOCK_PX,
                        BIGTIFF="IF_SAFER",
                        OVERVIEW_RESAMPLING="MODE" if key == "output" else "AVERAGE",
                    )
            except io_errors() as exc:
                raise write_failure(exc, path) from None
            Path(self._work.pop(key)).unlink()
        qml, pam = sidecars(self.paths.classes)
        for path, text in ((qml, style.qml()), (pam, style.pam_xml())):
            try:
                self.destinations.temporary(path).write_text(text)
            except OSError as exc:
                raise write_failure(exc, path) from None

    def close(self) -> None:
        """Close any dataset still open (the destinations remove the files); idempotent."""
        for ds in self._open.values():
            with contextlib.suppress(Exception):
                ds.close()
        self._open.clear()
