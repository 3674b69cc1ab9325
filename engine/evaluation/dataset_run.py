"""A model run patch by patch over a FLAIR-format folder, one confusion matrix accumulated.

Each patch goes through the same `Predictor` as `predict` (normalisation, class mapping,
inactive classes), in batches of patches of equal size. The FLAIR patches are already on the
model's 0.2 m grid, so they are read as they are, with no tiling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from engine.errors import InvalidInput
from engine.evaluation.confusion import ConfusionMatrix
from engine.evaluation.datasets import FlairPatch, labels_to_codes
from engine.evaluation.metrics import scores_from_matrix
from engine.evaluation.nomenclature import Nomenclature
from engine.evaluation.report import PatchScore
from engine.progress import Reporter

ExtrasFn = Callable[[Sequence[FlairPatch]], "dict[str, Any] | None"]


class PredictorLike(Protocol):
    """What `evaluate_dataset` needs from `engine.inference.Predictor`."""

    def predict(self, images: np.ndarray, extras: dict[str, Any] | None = None) -> Any:
        """(B, C, H, W) raw band values -> an object with `.codes` (B, H, W) FLAIR codes."""


@dataclass
class DatasetResult:
    """The accumulated matrix, every patch's own score, and what was run."""

    confusion: ConfusionMatrix
    patch_scores: list[PatchScore] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)

    def worst(self, n: int) -> list[PatchScore]:
        """The `n` patches with the lowest mIoU (undefined mIoU last)."""
        key = [(math.inf if math.isnan(p.miou) else p.miou, p.patch_id) for p in self.patch_scores]
        order = sorted(range(len(key)), key=key.__getitem__)
        return [self.patch_scores[i] for i in order[:n]]


def read_patch(patch: FlairPatch, channels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The patch's bands in `channels` order (C, H, W) and its labels as FLAIR codes (H, W)."""
    import rasterio

    bands = patch.band_indexes(channels)
    try:
        with rasterio.open(patch.image) as src:
            if src.count < max(bands):
                raise InvalidInput(
                    f"patch {patch.image} has {src.count} bands; the model needs channels "
                    f"{list(channels)} (bands {bands})"
                )
            image = src.read(bands)
        with rasterio.open(patch.label) as src:
            labels = src.read(1)
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidInput(f"cannot read patch {patch.patch_id}: {exc}") from exc
    if labels.shape != image.shape[1:]:
        raise InvalidInput(
            f"patch {patch.patch_id}: image {image.shape[1:]} and label {labels.shape} sizes differ"
        )
    return image, labels_to_codes(labels, patch.label_encoding)


def patch_score(patch: FlairPatch, cm: ConfusionMatrix, nomenclature: Nomenclature) -> PatchScore:
    """One patch's mIoU (in `nomenclature`) and pixel accuracy."""
    matrix = nomenclature.project(cm.counts)
    ious = scores_from_matrix(matrix)["iou"][nomenclature.mean_mask]
    ious = ious[~np.isnan(ious)]
    total = int(matrix.sum())
    return PatchScore(
        patch_id=patch.patch_id,
        domain=patch.domain,
        zone=patch.zone,
        image=str(patch.image),
        miou=float(ious.mean()) if ious.size else math.nan,
        pixel_accuracy=float(np.trace(matrix) / total) if total else math.nan,
        pixels=total,
    )


def evaluate_dataset(
    patches: Sequence[FlairPatch],
    predictor: PredictorLike,
    channels: Sequence[str],
    nomenclature: Nomenclature,
    batch_size: int = 4,
    reporter: Reporter | None = None,
    extras_fn: ExtrasFn | None = None,
) -> DatasetResult:
    """Predict every patch and accumulate one confusion matrix.

    Args:
        patches: from `datasets.discover_patches`.
        predictor: an `engine.inference.Predictor` (or anything with its `predict`).
        channels: the model card's channels, in order (e.g. R, G, B, NIR, E).
        nomenclature: used for the per-patch scores (worst patches).
        batch_size: patches per `predict` call.
        reporter: progress (one unit per patch) and cancellation.
        extras_fn: gives `predict`'s extras for a batch (Sentinel-2 super-patches for U-T&T).
    """
    if not patches:
        raise InvalidInput("no patches to evaluate")
    reporter = reporter or Reporter()
    result = DatasetResult(ConfusionMatrix())
    reporter.start("evaluation", len(patches), unit="patches")
    batch: list[tuple[FlairPatch, np.ndarray, np.ndarray]] = []

    def flush() -> None:
        if not batch:
            return
        reporter.check_cancelled()
        images = np.stack([img for _, img, _ in batch])
        extras = extras_fn([p for p, _, _ in batch]) if extras_fn else None
        codes = np.asarray(predictor.predict(images, extras).codes)
        if codes.shape != (len(batch), *images.shape[2:]):
            raise InvalidInput(
                f"the predictor returned codes of shape {codes.shape} for a batch "
                f"of shape {images.shape}"
            )
        for (patch, _, labels), pred in zip(batch, codes, strict=True):
            cm = ConfusionMatrix.from_arrays(labels, pred)
            result.confusion.add(cm)
            result.patch_scores.append(patch_score(patch, cm, nomenclature))
        reporter.advance(len(batch))
        batch.clear()

    for patch in patches:
        reporter.check_cancelled()
        image, labels = read_patch(patch, channels)
        if batch and batch[0][1].shape != image.shape:
            flush()
        batch.append((patch, image, labels))
        if len(batch) >= batch_size:
            flush()
    flush()
    domains = sorted({p.domain for p in patches})
    result.context = {
        "mode": "dataset",
        "patches": len(patches),
        "domains": domains,
        "label_encodings": sorted({p.label_encoding for p in patches}),
    }
    if result.confusion.total == 0:
        raise InvalidInput("no labelled pixel in the evaluated patches (labels all 0?)")
    return result
