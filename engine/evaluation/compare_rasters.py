"""Prediction raster against reference raster, block by block on the prediction's grid.

The reference is read through a GDAL warped view (`WarpedVRT`) onto the prediction's CRS,
transform and size with nearest resampling, so grids may differ and nothing is copied whole.
Pixels are left out where the prediction or the reference is no data (the declared nodata,
else 0 as in FLAIR maps and masks) and, with a mask, outside its polygons. Memory is bounded by
the block size, whatever the raster size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.classes import NODATA_CODE
from engine.errors import InputNotFound, InvalidInput
from engine.evaluation.confusion import ConfusionMatrix
from engine.progress import Reporter

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_PX = 1024


@dataclass
class ComparisonResult:
    """The accumulated matrix and what was compared."""

    confusion: ConfusionMatrix
    context: dict[str, Any] = field(default_factory=dict)


def iter_windows(width: int, height: int, block_px: int) -> Iterator[Any]:
    """Row-major square windows of `block_px` covering a `width` x `height` grid."""
    from rasterio.windows import Window

    for row_off in range(0, height, block_px):
        for col_off in range(0, width, block_px):
            yield Window(
                col_off, row_off, min(block_px, width - col_off), min(block_px, height - row_off)
            )


def count_windows(width: int, height: int, block_px: int) -> int:
    """Number of windows `iter_windows` yields: ceil(w / b) * ceil(h / b)."""
    return -(-width // block_px) * -(-height // block_px)


def _open(path: Path, role: str):
    import rasterio

    path = Path(path)
    if not path.exists():
        raise InputNotFound(f"{role} raster {path} does not exist")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidInput(f"{role} raster {path} cannot be read by GDAL: {exc}") from exc


def _nodata(ds: Any) -> int:
    value = ds.nodata
    return NODATA_CODE if value is None else int(value)


def _same_grid(a: Any, b: Any) -> bool:
    return (
        a.crs == b.crs
        and a.width == b.width
        and a.height == b.height
        and a.transform.almost_equals(b.transform)
    )


def _aligned_reference(stack: ExitStack, pred: Any, ref: Any, ref_nodata: int) -> Any:
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    if _same_grid(pred, ref):
        return ref
    if pred.crs is None or ref.crs is None:
        if (pred.width, pred.height) == (ref.width, ref.height):
            logger.warning("a raster has no CRS; assuming both share the same grid")
            return ref
        raise InvalidInput(
            "the prediction or the reference has no CRS and their sizes differ, so they cannot "
            "be aligned; give both rasters a CRS (e.g. gdal_edit.py -a_srs EPSG:2154)"
        )
    return stack.enter_context(
        WarpedVRT(
            ref,
            crs=pred.crs,
            transform=pred.transform,
            width=pred.width,
            height=pred.height,
            resampling=Resampling.nearest,
            src_nodata=ref.nodata,
            nodata=ref_nodata,
        )
    )


def load_mask_geometries(mask_path: Path, crs: Any) -> list[Any]:
    """Polygons of a vector file, reprojected to `crs`."""
    import geopandas as gpd

    mask_path = Path(mask_path)
    if not mask_path.exists():
        raise InputNotFound(f"mask {mask_path} does not exist")
    try:
        frame = gpd.read_file(mask_path)
    except Exception as exc:  # pyogrio raises its own DataSourceError hierarchy
        raise InvalidInput(f"mask {mask_path} cannot be read as a vector layer: {exc}") from exc
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    frame = frame[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if frame.empty:
        raise InvalidInput(f"mask {mask_path} has no polygons; give a polygon layer")
    if frame.crs is None:
        raise InvalidInput(f"mask {mask_path} has no CRS; save it with one (e.g. EPSG:2154)")
    return list(frame.to_crs(crs).geometry)


def compare_rasters(
    prediction: Path,
    reference: Path,
    mask: Path | None = None,
    reporter: Reporter | None = None,
    block_px: int = DEFAULT_BLOCK_PX,
) -> ComparisonResult:
    """Accumulate the confusion matrix of `prediction` (band 1) against `reference` (band 1).

    Args:
        prediction: map of FLAIR codes 1..19 (0 or declared nodata = no data).
        reference: labels in FLAIR codes, any grid; aligned by nearest resampling.
        mask: optional polygon layer; only pixels whose centres fall inside count.
        reporter: progress (one unit per block) and cancellation.
        block_px: block side in pixels; memory is a few arrays of this size.
    """
    from rasterio import features, windows

    reporter = reporter or Reporter()
    cm = ConfusionMatrix()
    with ExitStack() as stack:
        pred = stack.enter_context(_open(prediction, "prediction"))
        ref = stack.enter_context(_open(reference, "reference"))
        pred_nodata, ref_nodata = _nodata(pred), _nodata(ref)
        aligned = _aligned_reference(stack, pred, ref, ref_nodata)
        geoms = load_mask_geometries(mask, pred.crs) if mask is not None else None
        if geoms is not None and pred.crs is None:
            raise InvalidInput("the prediction has no CRS, so a mask cannot be placed on it")
        total = count_windows(pred.width, pred.height, block_px)
        reporter.log(
            f"comparing {prediction} with {reference} on a {pred.width} x {pred.height} grid "
            f"({'same grid' if aligned is ref else 'reference resampled, nearest'})"
        )
        reporter.start("evaluation", total, unit="blocks")
        for window in iter_windows(pred.width, pred.height, block_px):
            reporter.check_cancelled()
            p = pred.read(1, window=window)
            r = aligned.read(1, window=window)
            valid = None
            if geoms is not None:
                valid = features.geometry_mask(
                    geoms,
                    out_shape=p.shape,
                    transform=windows.transform(window, pred.transform),
                    invert=True,
                )
            cm.update(r, p, valid, reference_nodata=ref_nodata, prediction_nodata=pred_nodata)
            reporter.advance(1)
        context = {
            "mode": "rasters",
            "prediction": str(prediction),
            "reference": str(reference),
            "mask": str(mask) if mask is not None else None,
            "grid": {
                "crs": str(pred.crs),
                "width": pred.width,
                "height": pred.height,
                "res": list(pred.res),
            },
            "reference_resampled": aligned is not ref,
            "prediction_nodata": pred_nodata,
            "reference_nodata": ref_nodata,
        }
    excluded = cm.excluded
    if excluded.invalid_reference or excluded.invalid_prediction:
        reporter.log(
            f"{excluded.invalid_reference} reference and {excluded.invalid_prediction} prediction "
            "pixels hold values outside the FLAIR codes 1..19 and were left out; is the reference "
            "in FLAIR codes?",
            level="WARNING",
        )
    if cm.total == 0:
        raise InvalidInput(
            "no pixel has both a prediction and a reference label (check that the rasters "
            "overlap, their nodata values, and the mask)"
        )
    return ComparisonResult(cm, context)
