"""Prediction raster against reference raster, block by block on the prediction's grid.

The reference is read through a GDAL warped view (`WarpedVRT`) onto the prediction's CRS,
transform and size with nearest resampling, so grids may differ and nothing is copied whole.
Pixels are left out where the prediction or the reference is no data (the declared nodata,
else 0 as in FLAIR maps and masks) and, with a mask, outside its polygons. Memory is bounded by
the block size, whatever the raster size.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.area import area_from_polygons
from engine.classes import NODATA_CODE
from engine.errors import InvalidInput
from engine.evaluation.confusion import ConfusionMatrix
from engine.grid import Grid
from engine.io.tile_reader import open_raster
from engine.progress import Reporter

DEFAULT_BLOCK_PX = 1024


@dataclass
class ComparisonResult:
    """The accumulated matrix and what was compared."""

    confusion: ConfusionMatrix
    context: dict[str, Any] = field(default_factory=dict)


def _nodata(ds: Any) -> int:
    value = ds.nodata
    return NODATA_CODE if value is None else int(value)


def _aligned_reference(
    stack: ExitStack, pred: Any, ref: Any, ref_nodata: int, say: Callable[..., None]
) -> Any:
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    if Grid.of(pred).same_as(Grid.of(ref)):
        return ref
    if pred.crs is None or ref.crs is None:
        if (pred.width, pred.height) == (ref.width, ref.height):
            say("a raster has no CRS; assuming both share the same grid", "WARNING")
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
    reporter = reporter or Reporter()
    cm = ConfusionMatrix()
    with ExitStack() as stack:
        pred = stack.enter_context(open_raster(prediction))
        ref = stack.enter_context(open_raster(reference))
        pred_nodata, ref_nodata = _nodata(pred), _nodata(ref)
        aligned = _aligned_reference(stack, pred, ref, ref_nodata, reporter.log)
        grid = Grid.of(pred)
        area = None
        if mask is not None:
            if pred.crs is None:
                raise InvalidInput("the prediction has no CRS, so a mask cannot be placed on it")
            area = area_from_polygons(grid, mask)
        reporter.log(
            f"comparing {prediction} with {reference} on a {pred.width} x {pred.height} grid "
            f"({'same grid' if aligned is ref else 'reference resampled, nearest'})"
        )
        reporter.start("evaluation", grid.num_blocks(block_px), unit="blocks")
        for window in grid.blocks(block_px):
            reporter.check_cancelled()
            p = pred.read(1, window=window)
            r = aligned.read(1, window=window)
            valid = area.polygon_mask(grid, window) if area is not None else None
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
