"""A confusion matrix over FLAIR codes, accumulated block by block.

Rows are reference codes, columns predicted codes, both indexed by the code itself (index 0 is
unused: no data never enters the matrix). Pixels where either side is no data, outside 1..19,
or outside the evaluation mask are counted apart, so the report can say how much was left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.classes import CODES, N_CODES, NODATA_CODE


@dataclass
class ExclusionCounts:
    """Pixels left out of the matrix, by reason."""

    reference_nodata: int = 0
    prediction_nodata: int = 0
    outside_mask: int = 0
    invalid_reference: int = 0
    invalid_prediction: int = 0

    def total(self) -> int:
        """All excluded pixels."""
        return (
            self.reference_nodata
            + self.prediction_nodata
            + self.outside_mask
            + self.invalid_reference
            + self.invalid_prediction
        )

    def add(self, other: ExclusionCounts) -> None:
        """Add another block's counts to these."""
        self.reference_nodata += other.reference_nodata
        self.prediction_nodata += other.prediction_nodata
        self.outside_mask += other.outside_mask
        self.invalid_reference += other.invalid_reference
        self.invalid_prediction += other.invalid_prediction

    def as_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return {
            "reference_nodata": self.reference_nodata,
            "prediction_nodata": self.prediction_nodata,
            "outside_mask": self.outside_mask,
            "invalid_reference": self.invalid_reference,
            "invalid_prediction": self.invalid_prediction,
        }


@dataclass
class ConfusionMatrix:
    """Counts of (reference code, predicted code) pairs; `counts[ref, pred]`, int64."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros((N_CODES, N_CODES), np.int64))
    excluded: ExclusionCounts = field(default_factory=ExclusionCounts)

    @classmethod
    def from_arrays(
        cls,
        reference: np.ndarray,
        prediction: np.ndarray,
        valid: np.ndarray | None = None,
        reference_nodata: int | None = NODATA_CODE,
        prediction_nodata: int | None = NODATA_CODE,
    ) -> ConfusionMatrix:
        """The matrix of one block; see `update`."""
        cm = cls()
        cm.update(reference, prediction, valid, reference_nodata, prediction_nodata)
        return cm

    def update(
        self,
        reference: np.ndarray,
        prediction: np.ndarray,
        valid: np.ndarray | None = None,
        reference_nodata: int | None = NODATA_CODE,
        prediction_nodata: int | None = NODATA_CODE,
    ) -> None:
        """Add the pixels of one block.

        Args:
            reference: reference codes, any integer dtype, any shape.
            prediction: predicted codes, same shape.
            valid: optional boolean mask of the same shape; False pixels are outside the area.
            reference_nodata: reference value meaning "no label" (0 in FLAIR masks).
            prediction_nodata: prediction value meaning "no data" (0 in FLAIR maps).
        """
        if reference.shape != prediction.shape:
            raise ValueError(
                f"reference {reference.shape} and prediction {prediction.shape} differ"
            )
        ref = np.asarray(reference).ravel().astype(np.int64, copy=False)
        pred = np.asarray(prediction).ravel().astype(np.int64, copy=False)
        keep = np.ones(ref.shape, dtype=bool)
        if valid is not None:
            inside = np.asarray(valid, dtype=bool).ravel()
            self.excluded.outside_mask += int((~inside).sum())
            keep &= inside
        keep = self._drop(keep, ref, reference_nodata, "reference_nodata", "invalid_reference")
        keep = self._drop(keep, pred, prediction_nodata, "prediction_nodata", "invalid_prediction")
        pairs = ref[keep] * N_CODES + pred[keep]
        self.counts += np.bincount(pairs, minlength=N_CODES * N_CODES).reshape(N_CODES, N_CODES)

    def _drop(
        self,
        keep: np.ndarray,
        values: np.ndarray,
        nodata: int | None,
        nodata_key: str,
        bad_key: str,
    ) -> np.ndarray:
        is_nodata = keep & (values == nodata) if nodata is not None else np.zeros_like(keep)
        in_range = (values >= min(CODES)) & (values <= max(CODES))
        is_bad = keep & ~is_nodata & ~in_range
        setattr(
            self.excluded, nodata_key, getattr(self.excluded, nodata_key) + int(is_nodata.sum())
        )
        setattr(self.excluded, bad_key, getattr(self.excluded, bad_key) + int(is_bad.sum()))
        return keep & ~is_nodata & in_range

    def add(self, other: ConfusionMatrix) -> None:
        """Accumulate another matrix into this one."""
        self.counts += other.counts
        self.excluded.add(other.excluded)

    @property
    def total(self) -> int:
        """Number of evaluated pixels."""
        return int(self.counts.sum())

    def for_codes(self) -> np.ndarray:
        """The (19, 19) matrix over codes 1..19, rows = reference."""
        return self.counts[1:, 1:].copy()
