"""Reading one tile's model channels and validity mask on the processing grid.

The source is read as it is when its pixels already are the processing grid's; otherwise
through a GDAL warped VRT (resampling and reprojection on the fly, never a full copy). A tile
that reaches past the grid is padded with zeros (as IGN's tool pads) and marked invalid there.
Validity combines nodata, alpha bands and internal masks of every band used, the elevation
raster's own mask, and the polygons of the area.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.enums import MaskFlags, Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from engine.area import Area
from engine.errors import InputNotFound, InvalidInput
from engine.failures import file_name, is_gdal_path, read_failure
from engine.grid import Grid
from engine.io.bands import BandMapping


@dataclass(frozen=True)
class TileData:
    """A tile's channels (C, H, W) in model order, on the 0..255 scale, and its validity."""

    image: np.ndarray
    valid: np.ndarray  # bool (H, W)


def open_raster(path: Path | str) -> rasterio.io.DatasetReader:
    """Open any raster GDAL reads, with the errors a user can act on.

    GDAL paths (`/vsizip//abs/x.zip/a.tif`, `https://...`) are passed on unchanged.
    """
    if not is_gdal_path(path) and not Path(path).exists():
        raise InputNotFound(f"input raster {path} does not exist", path=str(path))
    try:
        return rasterio.open(os.fspath(path))
    except rasterio.errors.RasterioIOError as exc:
        if "permission denied" in str(exc).lower():
            raise read_failure(exc, path) from None
        raise InvalidInput(f"{path} is not a raster GDAL can read ({exc})") from None


def value_scale_for(
    src: rasterio.io.DatasetReader, bands: tuple[int, ...], input_max: float | None
) -> float | None:
    """Factor to bring band values to FLAIR's 8-bit scale; None for 8-bit input.

    FLAIR models were trained on 8-bit imagery. Other types are divided by `input_max / 255`;
    without `input_max`, the smallest of 255, 4095 (12-bit) and 65535 above the bands'
    approximate maximum is used. NaN and infinity never count: GDAL's statistics include
    infinity, so a non-finite maximum is measured again on finite values only.
    """
    if input_max is not None:
        return 255.0 / float(input_max)
    if all(src.dtypes[b - 1] == "uint8" for b in bands):
        return None
    try:
        highest: float | None = max(
            float(s.max) for s in src.stats(indexes=list(bands), approx=True)
        )
    except (rasterio.errors.RasterioError, CPLE_BaseError):
        highest = math.nan  # GDAL refuses bands without a valid pixel in its sample
    if not math.isfinite(highest):  # GDAL counts infinity in; NaN would make a NaN scale
        highest = _finite_max(src, bands)
    if highest is None or highest <= 0:
        return 255.0 / 255.0
    for candidate in (255.0, 4095.0, 65535.0):
        if highest <= candidate:
            return 255.0 / candidate
    return 255.0 / highest


def _finite_max(src: rasterio.io.DatasetReader, bands: tuple[int, ...]) -> float | None:
    """The largest finite valid value of the bands, from a read of at most 1024 px a side."""
    step = max(1, math.ceil(max(src.width, src.height) / 1024))
    shape = (len(bands), max(1, src.height // step), max(1, src.width // step))
    try:
        data = src.read(list(bands), out_shape=shape, masked=True)
    except (rasterio.errors.RasterioError, CPLE_BaseError, OSError) as exc:
        raise read_failure(exc, src.name) from None
    values = data.compressed()
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else None


class TileReader:
    """Reads tiles of the processing grid from the orthophoto (and elevation raster).

    Not thread-safe: one reader thread owns it.
    """

    def __init__(
        self,
        src: rasterio.io.DatasetReader,
        mapping: BandMapping,
        grid: Grid,
        same_as_source: bool,
        area: Area,
        value_scale: float | None,
    ) -> None:
        self.grid = grid
        self.area = area
        self.mapping = mapping
        self.value_scale = value_scale
        self._src = src
        self._ortho = (
            src
            if same_as_source
            else self._warp(
                src, Resampling.average if src.res[0] < grid.res_m / 1.5 else Resampling.bilinear
            )
        )
        self._elevation = None
        self._elevation_src = None
        if mapping.elevation_path is not None:
            self._elevation_src = elevation_src = open_raster(mapping.elevation_path)
            band = next(s.band for s in mapping.sources if s.external)
            if not 1 <= band <= elevation_src.count:
                raise InvalidInput(
                    f"--elevation: band {band} is out of range; "
                    f"{file_name(mapping.elevation_path)} has {elevation_src.count} band(s)"
                )
            if elevation_src.crs is None:
                raise InvalidInput(f"elevation raster {mapping.elevation_path} has no CRS")
            self._elevation = self._warp(elevation_src, Resampling.bilinear)
        self._ortho_bands = list(mapping.ortho_bands)

    def _warp(self, src: rasterio.io.DatasetReader, resampling: Resampling) -> WarpedVRT:
        flags = src.mask_flag_enums[0]
        has_mask = (
            src.nodata is not None
            or any(MaskFlags.alpha in f or MaskFlags.per_dataset in f for f in src.mask_flag_enums)
            or MaskFlags.all_valid not in flags
        )
        return WarpedVRT(
            src,
            crs=self.grid.crs,
            transform=self.grid.transform,
            width=self.grid.width,
            height=self.grid.height,
            resampling=resampling,
            add_alpha=not has_mask,
        )

    def read(self, window: Window) -> TileData:
        """The tile at `window` of the processing grid (may reach past the grid's edges).

        NaN and infinity are nodata whether or not the raster declares a nodata value: they
        are marked invalid and zeroed before scaling, so the model never sees them.
        """
        h, w = int(window.height), int(window.width)
        n = len(self.mapping.sources)
        dtype = np.uint8 if self.value_scale is None else np.float32
        image = np.zeros((n, h, w), dtype=dtype)
        valid = np.zeros((h, w), dtype=bool)
        inner = self.grid.clip(window)
        if inner is None:
            return TileData(image, valid)
        r0 = int(inner.row_off - window.row_off)
        c0 = int(inner.col_off - window.col_off)
        rows = slice(r0, r0 + int(inner.height))
        cols = slice(c0, c0 + int(inner.width))
        ortho, ok = _read_valid(self._ortho, self._ortho_bands, inner, self._src.name)
        target = image[:, rows, cols]  # a view: channels are written in place, no stacking copy
        k = 0
        for i, source in enumerate(self.mapping.sources):
            if source.external:
                assert self._elevation is not None and self.mapping.elevation_path is not None
                band, band_ok = _read_valid(
                    self._elevation, [source.band], inner, self.mapping.elevation_path
                )
                # the E channel is FLAIR's 8-bit encoding; other types are clipped, never wrapped
                target[i] = band[0] if band.dtype == np.uint8 else np.clip(band[0], 0, 255)
                ok &= band_ok
            else:
                target[i] = ortho[k]
                if self.value_scale is not None:  # the orthophoto's bands only, never E
                    np.multiply(target[i], self.value_scale, out=target[i])
                    np.clip(target[i], 0.0, 255.0, out=target[i])
                k += 1
        polygon_ok = self.area.polygon_mask(self.grid, inner)
        if polygon_ok is not None:
            ok &= polygon_ok
        if not ok.all():
            target[:, ~ok] = 0
        valid[rows, cols] = ok
        return TileData(image, valid)

    def close(self) -> None:
        if self._ortho is not self._src:
            self._ortho.close()
        if self._elevation is not None:
            self._elevation.close()
        if self._elevation_src is not None:
            self._elevation_src.close()


def _read_valid(
    ds: rasterio.io.DatasetReader | WarpedVRT, bands: list[int], window: Window, path: Path | str
) -> tuple[np.ndarray, np.ndarray]:
    """Bands (C, h, w) of a window and where all of them are valid: the raster's masks, and
    finite values for float data (non-finite values are replaced by 0)."""
    try:
        data = ds.read(bands, window=window)
        ok = np.all(ds.read_masks(bands, window=window) > 0, axis=0)
    except (rasterio.errors.RasterioError, CPLE_BaseError, OSError) as exc:
        raise read_failure(exc, path) from None
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        if not finite.all():
            data[~finite] = 0
            ok &= finite.all(axis=0)
    return data, ok
