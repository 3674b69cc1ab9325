"""The report folder: metrics.json, per_class.csv, confusion matrices as CSV, and plots.

The report is a set of files in a folder that may hold other things: each file is claimed
and written under a hidden temporary name beside it, and all are renamed together at the end
(`engine.io.destination.Destinations`), so an interrupted run never leaves a half-written file
under a final name. A new report replaces the files of an earlier one of the same names.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from engine.errors import OutputError
from engine.evaluation.confusion import ConfusionMatrix
from engine.evaluation.metrics import Metrics, nan_to_none
from engine.evaluation.plots import plot_confusion, plot_iou_bars
from engine.io.destination import Destinations

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


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=1, default=str))


def _metrics_doc(
    all_metrics: Sequence[Metrics],
    confusion: ConfusionMatrix,
    context: dict[str, Any] | None,
    worst_patches: Sequence[PatchScore],
) -> dict[str, Any]:
    primary = all_metrics[0]
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
    return doc


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
    primary = all_metrics[0]
    doc = _metrics_doc(all_metrics, confusion, context, worst_patches)
    # role -> (file name, writer of that file); metrics.json first: claimed first, renamed last
    files: dict[str, tuple[str, Callable[[Path], object]]] = {
        "metrics": (METRICS_JSON, partial(_write_json, doc=doc)),
        "per_class": (PER_CLASS_CSV, partial(_write_per_class, all_metrics=all_metrics)),
        "confusion_matrix": (CONFUSION_CSV, partial(_write_confusion, metrics=primary)),
    }
    for m in all_metrics[1:]:
        files[f"confusion_matrix_{m.nomenclature.name}"] = (
            f"confusion_matrix_{m.nomenclature.name}.csv",
            partial(_write_confusion, metrics=m),
        )
    if worst_patches:
        files["worst_patches"] = (WORST_PATCHES_CSV, partial(_write_worst, patches=worst_patches))
    if plots:
        files["confusion_png"] = (CONFUSION_PNG, partial(plot_confusion, primary))
        files["iou_png"] = (IOU_PNG, partial(plot_iou_bars, primary))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the report folder {out_dir}: {exc}") from exc
    with Destinations(overwrite=True) as destinations:
        temps = {
            role: destinations.claim(out_dir / name, "report file")
            for role, (name, _) in files.items()
        }
        try:
            for role, (_, write) in files.items():
                write(temps[role])
            destinations.commit()
        except OSError as exc:
            raise OutputError(f"cannot write the report into {out_dir}: {exc}") from exc
    return {role: str(out_dir / name) for role, (name, _) in files.items()}


def headline(m: Metrics) -> str:
    """One line: nomenclature, mIoU, OA and mean F1 in percent."""

    def pct(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{100 * v:.2f} %"

    return (
        f"{m.nomenclature.name}: mIoU {pct(m.miou)}, OA {pct(m.overall_accuracy)}, "
        f"mean F1 {pct(m.mean_f1)} over {m.total_px} pixels"
    )
