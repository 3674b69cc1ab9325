"""The report folder: metrics.json, per_class.csv, confusion matrices as CSV, and plots.

Files are written under a temporary folder inside the report folder and moved into place at
the end, so an interrupted run never leaves a half-written file under a final name.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import OutputError
from engine.evaluation.confusion import ConfusionMatrix
from engine.evaluation.metrics import Metrics, nan_to_none
from engine.evaluation.plots import plot_confusion, plot_iou_bars

logger = logging.getLogger(__name__)

METRICS_JSON = "metrics.json"
PER_CLASS_CSV = "per_class.csv"
CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_PNG = "confusion_matrix.png"
IOU_PNG = "iou_per_class.png"
WORST_PATCHES_CSV = "worst_patches.csv"


@dataclass(frozen=True)
class PatchScore:
    """One patch's own scores (for the worst-patches list), in the primary nomenclature."""

    patch_id: str
    domain: str
    zone: str
    image: str
    miou: float
    pixel_accuracy: float
    pixels: int


def _fmt(value: float | None) -> str:
    return (
        "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6f}"
    )


def _write_per_class(path: Path, all_metrics: Sequence[Metrics]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "nomenclature",
                "class",
                "codes",
                "in_mean",
                "support_px",
                "predicted_px",
                "iou",
                "precision",
                "recall",
                "f1",
            ]
        )
        for m in all_metrics:
            for c in m.classes:
                w.writerow(
                    [
                        m.nomenclature.name,
                        c.name,
                        " ".join(str(k) for k in c.codes),
                        int(c.in_mean),
                        c.support_px,
                        c.predicted_px,
                        _fmt(c.iou),
                        _fmt(c.precision),
                        _fmt(c.recall),
                        _fmt(c.f1),
                    ]
                )


def _write_confusion(path: Path, metrics: Metrics) -> None:
    names = metrics.nomenclature.class_names
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["reference \\ predicted", *names])
        for name, row in zip(names, metrics.matrix, strict=True):
            w.writerow([name, *(int(v) for v in row)])


def _write_worst(path: Path, patches: Sequence[PatchScore]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patch_id", "domain", "zone", "miou", "pixel_accuracy", "pixels", "image"])
        for p in patches:
            w.writerow(
                [
                    p.patch_id,
                    p.domain,
                    p.zone,
                    _fmt(p.miou),
                    _fmt(p.pixel_accuracy),
                    p.pixels,
                    p.image,
                ]
            )


def summary_stats(primary: Metrics, confusion: ConfusionMatrix) -> dict[str, Any]:
    """The figures a caller shows first (the CLI's `stats`)."""
    return {
        "nomenclature": primary.nomenclature.name,
        "miou": nan_to_none(primary.miou),
        "overall_accuracy": nan_to_none(primary.overall_accuracy),
        "mean_f1": nan_to_none(primary.mean_f1),
        "pixels": primary.total_px,
        "excluded_pixels": confusion.excluded.total(),
    }


def write_report(
    out_dir: Path,
    all_metrics: Sequence[Metrics],
    confusion: ConfusionMatrix,
    context: dict[str, Any] | None = None,
    worst_patches: Sequence[PatchScore] = (),
    plots: bool = True,
) -> dict[str, str]:
    """Write the report folder; the first of `all_metrics` is the primary nomenclature.

    Returns:
        The written files by role (`metrics`, `per_class`, `confusion_matrix`, ...), as strings.
    """
    if not all_metrics:
        raise ValueError("write_report needs at least one Metrics")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    except OSError as exc:
        raise OutputError(f"cannot create the report folder {out_dir}: {exc}") from exc
    primary = all_metrics[0]
    files: dict[str, str] = {}
    try:
        doc = {
            **summary_stats(primary, confusion),
            "primary_nomenclature": primary.nomenclature.name,
            "primary_description": primary.nomenclature.description,
            "excluded_px": confusion.excluded.as_dict(),
            "context": context or {},
            "nomenclatures": {m.nomenclature.name: m.to_dict() for m in all_metrics},
            "confusion_matrix_codes": confusion.for_codes().tolist(),
        }
        if worst_patches:
            doc["worst_patches"] = [
                {
                    "patch_id": p.patch_id,
                    "domain": p.domain,
                    "miou": nan_to_none(p.miou),
                    "pixel_accuracy": nan_to_none(p.pixel_accuracy),
                }
                for p in worst_patches
            ]
        (tmp / METRICS_JSON).write_text(json.dumps(doc, indent=1, default=str))
        files["metrics"] = METRICS_JSON
        _write_per_class(tmp / PER_CLASS_CSV, all_metrics)
        files["per_class"] = PER_CLASS_CSV
        _write_confusion(tmp / CONFUSION_CSV, primary)
        files["confusion_matrix"] = CONFUSION_CSV
        for m in all_metrics[1:]:
            name = f"confusion_matrix_{m.nomenclature.name}.csv"
            _write_confusion(tmp / name, m)
            files[f"confusion_matrix_{m.nomenclature.name}"] = name
        if worst_patches:
            _write_worst(tmp / WORST_PATCHES_CSV, worst_patches)
            files["worst_patches"] = WORST_PATCHES_CSV
        if plots:
            plot_confusion(primary, tmp / CONFUSION_PNG)
            files["confusion_png"] = CONFUSION_PNG
            plot_iou_bars(primary, tmp / IOU_PNG)
            files["iou_png"] = IOU_PNG
        for name in files.values():
            os.replace(tmp / name, out_dir / name)
    except OSError as exc:
        raise OutputError(f"cannot write the report into {out_dir}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("report written to %s", out_dir)
    return {role: str(out_dir / name) for role, name in files.items()}


def headline(m: Metrics) -> str:
    """One line: nomenclature, mIoU, OA and mean F1 in percent."""

    def pct(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{100 * v:.2f}"

    return (f"{m.nomenclature.name}: mIoU {pct(m.miou)}, OA {pct(m.overall_accuracy)}, "
            f"mean F1 {pct(m.mean_f1)} over {m.total_px} pixels")
