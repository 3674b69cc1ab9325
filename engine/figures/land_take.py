"""Land take ("zéro artificialisation nette"): which transitions count, and their areas.

Land take is the area that went from the natural, agricultural or forest group to the
artificial group between two maps; renaturation the reverse; net land take the difference.
The groups are a table of FLAIR codes (`DEFAULT_GROUPS`), which a JSON file may replace:

    {"artificial": [1, 3, 18], "natural": [4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17]}

Default groups (FLAIR code and class):

| group | codes |
|---|---|
| artificial | 1 building, 3 impervious surface, 18 greenhouse |
| natural, agricultural or forest | 4 bare soil, 5 water, 6 coniferous, 7 deciduous, 8 brushwood, 9 vineyard, 10 herbaceous vegetation, 11 agricultural land, 12 plowed land, 14 snow, 15 clear cut, 16 mixed, 17 ligneous |
| neither (never land take) | 2 pervious surface, 13 swimming pool, 19 other |

Pervious surfaces (gardens, sports grounds), swimming pools and "other" are in neither group by
default: whether they are artificialised is a local choice, which the JSON file makes.
"""  # noqa: E501

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.classes import CODES, class_name
from engine.errors import InputNotFound, InvalidInput
from engine.failures import file_name

M2_PER_HA = 10_000.0
GROUP_KEYS = ("artificial", "natural")


@dataclass(frozen=True)
class Groups:
    """The two groups of FLAIR codes land take is measured between (disjoint, codes 1..19)."""

    artificial: tuple[int, ...]
    natural: tuple[int, ...]
    source: str = "default"

    @property
    def neither(self) -> tuple[int, ...]:
        """Codes in no group: their transitions are never land take nor renaturation."""
        return tuple(c for c in CODES if c not in self.artificial and c not in self.natural)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            **{
                key: {"codes": list(codes), "classes": [class_name(c) for c in codes]}
                for key, codes in (
                    ("artificial", self.artificial),
                    ("natural", self.natural),
                    ("neither", self.neither),
                )
            },
        }


DEFAULT_GROUPS = Groups(
    artificial=(1, 3, 18),
    natural=(4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17),
)


def groups_from_json(path: Path) -> Groups:
    """The groups of a JSON file `{"artificial": [codes], "natural": [codes]}`, validated.

    Raises:
        InputNotFound: no such file.
        InvalidInput: not JSON, other keys, codes outside 1..19, or a code in both groups.
    """
    path = Path(path)
    name = file_name(path)
    if not path.is_file():
        raise InputNotFound(f"groups file {path} does not exist", path=str(path))
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f'groups file {name} is not readable JSON ({exc}); write {{"artificial": [1, 3, 18], '
            '"natural": [4, 5, 6]}'
        ) from None
    if not isinstance(doc, dict) or set(doc) != set(GROUP_KEYS):
        found = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise InvalidInput(
            f'groups file {name} must hold exactly the keys "artificial" and "natural" '
            f"(lists of FLAIR codes); found {found}"
        )
    groups = {key: _codes(doc[key], key, name) for key in GROUP_KEYS}
    both = sorted(set(groups["artificial"]) & set(groups["natural"]))
    if both:
        raise InvalidInput(
            f"groups file {name}: codes {', '.join(map(str, both))} are in both groups; "
            "a class is artificial or natural, not both"
        )
    return Groups(groups["artificial"], groups["natural"], source=str(path))


def _codes(value: Any, key: str, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise InvalidInput(f'groups file {name}: "{key}" must be a list of FLAIR codes (integers)')
    bad = sorted({v for v in value if v not in CODES})
    if bad:
        raise InvalidInput(
            f'groups file {name}: "{key}" holds {", ".join(map(str, bad))}; FLAIR codes are '
            f"{min(CODES)} to {max(CODES)}"
        )
    if not value:
        raise InvalidInput(f'groups file {name}: "{key}" is empty; give at least one FLAIR code')
    return tuple(sorted(set(value)))


@dataclass(frozen=True)
class LandTake:
    """Areas in m² measured from a transition matrix of areas (before x after, codes 0..19)."""

    land_take_m2: float
    renaturation_m2: float
    changed_m2: float
    compared_m2: float

    @property
    def net_m2(self) -> float:
        """Land take less renaturation."""
        return self.land_take_m2 - self.renaturation_m2

    @classmethod
    def of(cls, areas_m2: np.ndarray, groups: Groups) -> LandTake:
        """The figures of `areas_m2[before, after]` (square, indexed by code; 0 is unused)."""
        areas = np.asarray(areas_m2, dtype=np.float64)
        artificial, natural = list(groups.artificial), list(groups.natural)
        total = float(areas.sum())
        return cls(
            land_take_m2=float(areas[np.ix_(natural, artificial)].sum()),
            renaturation_m2=float(areas[np.ix_(artificial, natural)].sum()),
            changed_m2=total - float(np.trace(areas)),
            compared_m2=total,
        )

    def figures(self) -> list[tuple[str, float]]:
        """(name, m²) in the order of the CSV and the report."""
        return [
            ("land_take", self.land_take_m2),
            ("renaturation", self.renaturation_m2),
            ("net", self.net_m2),
            ("changed", self.changed_m2),
            ("compared", self.compared_m2),
        ]

    def as_ha(self) -> dict[str, float]:
        """`{"land_take_ha": ..., "renaturation_ha": ..., ...}`."""
        return {f"{name}_ha": m2 / M2_PER_HA for name, m2 in self.figures()}


def _definitions(groups: Groups) -> dict[str, str]:
    art = " ".join(map(str, groups.artificial))
    nat = " ".join(map(str, groups.natural))
    return {
        "land_take": f"natural/agricultural/forest ({nat}) -> artificial ({art})",
        "renaturation": f"artificial ({art}) -> natural/agricultural/forest ({nat})",
        "net": "land take - renaturation",
        "changed": "any class -> another class",
        "compared": "pixels with a class in both maps",
    }


def write_land_take_csv(path: Path, land_take: LandTake, groups: Groups) -> None:
    """`figure,area_m2,area_ha,definition`: one row per figure, the groups in the definitions."""
    definitions = _definitions(groups)
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["figure", "area_m2", "area_ha", "definition"])
        for name, m2 in land_take.figures():
            w.writerow([name, f"{m2:.4f}", f"{m2 / M2_PER_HA:.6f}", definitions[name]])


def land_take_doc(land_take: LandTake, groups: Groups, context: dict[str, Any]) -> dict[str, Any]:
    """The content of land_take.json: figures in m² and ha, the groups, the inputs."""
    doc: dict[str, Any] = {}
    for name, m2 in land_take.figures():
        doc[f"{name}_m2"] = round(m2, 4)
        doc[f"{name}_ha"] = round(m2 / M2_PER_HA, 8)
    doc["definitions"] = _definitions(groups)
    doc["groups"] = groups.to_dict()
    doc.update(context)
    return doc


def write_land_take_json(path: Path, doc: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
