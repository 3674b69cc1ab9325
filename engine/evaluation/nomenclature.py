"""Class groupings the metrics are reported in.

- `flair19`: the 19 FLAIR codes, each its own class, all in the mean.
- `baseline13`: the FLAIR #1 / #2 baselines' grouping: codes 1..12 stay, every code above 12
  becomes "other"; the mean (mIoU) is over the first 12 classes only, as in the FLAIR papers.
- `model`: a model's active classes (e.g. FLAIR-INC 15cl: codes 15, 16, 17 and 19 never
  predicted); codes the model cannot predict are grouped into "other (inactive)", which counts
  in the overall accuracy but not in the mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.classes import CLASS_BY_CODE, CODES
from engine.errors import InvalidInput

OTHER_COLOUR = "#808080"
NOMENCLATURE_NAMES = ("flair19", "baseline13", "model")


@dataclass(frozen=True)
class ClassGroup:
    """One class of a nomenclature: a name, the FLAIR codes it gathers, a plot colour."""

    name: str
    codes: tuple[int, ...]
    colour: str
    in_mean: bool = True


@dataclass(frozen=True)
class Nomenclature:
    """An ordered list of class groups covering every FLAIR code exactly once."""

    name: str
    description: str
    groups: tuple[ClassGroup, ...]

    def __post_init__(self) -> None:
        seen = [c for g in self.groups for c in g.codes]
        if sorted(seen) != sorted(CODES):
            raise ValueError(f"nomenclature {self.name} must cover codes 1..19 exactly once")

    @property
    def class_names(self) -> tuple[str, ...]:
        """Group names in matrix order."""
        return tuple(g.name for g in self.groups)

    @property
    def mean_mask(self) -> np.ndarray:
        """Boolean vector: which groups enter mIoU and the other means."""
        return np.array([g.in_mean for g in self.groups], dtype=bool)

    def group_index(self) -> np.ndarray:
        """Vector mapping a FLAIR code (0..19) to its group index (-1 for code 0)."""
        index = np.full(max(CODES) + 1, -1, dtype=np.int64)
        for i, group in enumerate(self.groups):
            index[list(group.codes)] = i
        return index

    def project(self, code_counts: np.ndarray) -> np.ndarray:
        """Group a (20, 20) code-indexed confusion matrix into this nomenclature's (K, K) one."""
        k = len(self.groups)
        index = self.group_index()
        grouped = np.zeros((k, k), dtype=np.int64)
        rows, cols = np.nonzero(code_counts)
        for r, c in zip(rows, cols, strict=True):
            if r == 0 or c == 0:
                continue
            grouped[index[r], index[c]] += code_counts[r, c]
        return grouped


def _single(code: int, in_mean: bool = True) -> ClassGroup:
    cls = CLASS_BY_CODE[code]
    return ClassGroup(cls.name, (code,), cls.colour, in_mean)


def flair19() -> Nomenclature:
    """The 19 FLAIR codes, all in the mean."""
    return Nomenclature(
        "flair19",
        "19 FLAIR classes (codes 1-19); means over every class present",
        tuple(_single(c) for c in CODES),
    )


def baseline13() -> Nomenclature:
    """Codes 1..12 plus "other" (codes 13..19); means over the first 12 (FLAIR papers)."""
    other = ClassGroup("other", tuple(c for c in CODES if c > 12), OTHER_COLOUR, in_mean=False)
    return Nomenclature(
        "baseline13",
        "13-class baseline grouping of the FLAIR papers: codes 13-19 merged into 'other'; "
        "means over classes 1-12 ('other' excluded)",
        tuple(_single(c) for c in CODES if c <= 12) + (other,),
    )


def model_active(active_codes: Iterable[int], model_name: str = "model") -> Nomenclature:
    """A model's active classes; codes it can never predict grouped into "other (inactive)"."""
    active = sorted(set(int(c) for c in active_codes))
    bad = [c for c in active if c not in CODES]
    if bad or not active:
        raise InvalidInput(f"model {model_name}: active codes {active} are not FLAIR codes 1..19")
    inactive = tuple(c for c in CODES if c not in active)
    groups = tuple(_single(c) for c in active)
    if inactive:
        groups += (ClassGroup("other (inactive)", inactive, OTHER_COLOUR, in_mean=False),)
    codes_text = ", ".join(str(c) for c in inactive) or "none"
    return Nomenclature(
        "model",
        f"active classes of model {model_name} ({len(active)} classes); codes it never "
        f"predicts ({codes_text}) grouped into 'other (inactive)', excluded from the means",
        groups,
    )


def by_name(
    name: str, active_codes: Sequence[int] | None = None, model_name: str = "model"
) -> Nomenclature:
    """The nomenclature called `name` (one of `NOMENCLATURE_NAMES`)."""
    if name == "flair19":
        return flair19()
    if name == "baseline13":
        return baseline13()
    if name == "model":
        if active_codes is None:
            raise InvalidInput(
                "the 'model' nomenclature needs a model; use --nomenclature flair19 or baseline13 "
                "when comparing rasters"
            )
        return model_active(active_codes, model_name)
    raise InvalidInput(f"unknown nomenclature {name!r}; use one of {', '.join(NOMENCLATURE_NAMES)}")


def nomenclatures_for(
    primary: str, active_codes: Sequence[int] | None, model_name: str = "model"
) -> list[Nomenclature]:
    """Every applicable nomenclature, `primary` first.

    Args:
        primary: a name of `NOMENCLATURE_NAMES`, or "auto" (the model's classes when a model
            is known, else the 19 codes).
        active_codes: the model's active codes, or None when no model is involved.
        model_name: used in the model nomenclature's description.
    """
    names = [n for n in NOMENCLATURE_NAMES if n != "model" or active_codes is not None]
    if primary == "auto":
        primary = "model" if active_codes is not None else "flair19"
    first = by_name(primary, active_codes, model_name)
    return [first] + [by_name(n, active_codes, model_name) for n in names if n != primary]
