"""Per-class and mean scores from one accumulated confusion matrix.

Definitions, per class k of a nomenclature, with TP = M[k, k], FP = column sum - TP,
FN = row sum - TP (rows = reference):

- IoU = TP / (TP + FP + FN), precision = TP / (TP + FP), recall = TP / (TP + FN),
  F1 = 2 TP / (2 TP + FP + FN).
- A score whose denominator is 0 is undefined (NaN in memory, null in JSON, empty in CSV), not
  zero: a class absent from both reference and prediction has no IoU and is left out of the
  means. A class absent from the reference but predicted somewhere has IoU 0 and counts.
- mIoU, mean F1, mean precision, mean recall: the mean of the defined values over the
  nomenclature's classes marked `in_mean` (the 13-class baseline leaves "other" out).
- Overall accuracy: trace / total over all classes of the nomenclature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.evaluation.nomenclature import Nomenclature


@dataclass(frozen=True)
class ClassScores:
    """Scores of one class; NaN where undefined."""

    name: str
    codes: tuple[int, ...]
    in_mean: bool
    support_px: int  # reference pixels
    predicted_px: int
    tp_px: int
    iou: float
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class Metrics:
    """Everything computed for one nomenclature."""

    nomenclature: Nomenclature
    matrix: np.ndarray  # (K, K) int64, rows = reference
    classes: tuple[ClassScores, ...]
    miou: float
    mean_f1: float
    mean_precision: float
    mean_recall: float
    overall_accuracy: float
    total_px: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; NaN becomes None (null)."""
        return {
            "nomenclature": self.nomenclature.name,
            "description": self.nomenclature.description,
            "miou": nan_to_none(self.miou),
            "overall_accuracy": nan_to_none(self.overall_accuracy),
            "mean_f1": nan_to_none(self.mean_f1),
            "mean_precision": nan_to_none(self.mean_precision),
            "mean_recall": nan_to_none(self.mean_recall),
            "pixels": self.total_px,
            "classes_in_mean": [
                c.name for c in self.classes if c.in_mean and not math.isnan(c.iou)
            ],
            "per_class": [
                {
                    "name": c.name,
                    "codes": list(c.codes),
                    "in_mean": c.in_mean,
                    "support_px": c.support_px,
                    "predicted_px": c.predicted_px,
                    "iou": nan_to_none(c.iou),
                    "precision": nan_to_none(c.precision),
                    "recall": nan_to_none(c.recall),
                    "f1": nan_to_none(c.f1),
                }
                for c in self.classes
            ],
        }


def nan_to_none(value: float) -> float | None:
    """None for NaN, else the float (for JSON)."""
    return None if value is None or math.isnan(value) else float(value)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    chosen = values[mask]
    chosen = chosen[~np.isnan(chosen)]
    return float(chosen.mean()) if chosen.size else math.nan


def scores_from_matrix(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class IoU, precision, recall, F1, support, predicted and TP of a (K, K) matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(m)
    support = m.sum(axis=1)
    predicted = m.sum(axis=0)
    fp = predicted - tp
    fn = support - tp
    return {
        "iou": _ratio(tp, tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "support": support,
        "predicted": predicted,
        "tp": tp,
    }


def compute_metrics(code_counts: np.ndarray, nomenclature: Nomenclature) -> Metrics:
    """Metrics of a (20, 20) code-indexed confusion matrix in `nomenclature`."""
    matrix = nomenclature.project(code_counts)
    s = scores_from_matrix(matrix)
    mask = nomenclature.mean_mask
    total = int(matrix.sum())
    classes = tuple(
        ClassScores(
            name=g.name,
            codes=g.codes,
            in_mean=g.in_mean,
            support_px=int(s["support"][i]),
            predicted_px=int(s["predicted"][i]),
            tp_px=int(s["tp"][i]),
            iou=float(s["iou"][i]),
            precision=float(s["precision"][i]),
            recall=float(s["recall"][i]),
            f1=float(s["f1"][i]),
        )
        for i, g in enumerate(nomenclature.groups)
    )
    return Metrics(
        nomenclature=nomenclature,
        matrix=matrix,
        classes=classes,
        miou=_mean(s["iou"], mask),
        mean_f1=_mean(s["f1"], mask),
        mean_precision=_mean(s["precision"], mask),
        mean_recall=_mean(s["recall"], mask),
        overall_accuracy=float(np.trace(matrix) / total) if total else math.nan,
        total_px=total,
    )
