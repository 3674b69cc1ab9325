"""The FLAIR nomenclature: 19 classes, codes 1 to 19, 0 meaning no data.

The one table of names and colours: the engine styles its maps with it, and the plugin loads
this file by path (`flair_qgis.engine_shared.engine_module("classes")`) for its legends and
styles, so it imports nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

NODATA_CODE = 0


@dataclass(frozen=True)
class FlairClass:
    """One class of the FLAIR nomenclature with its official colour."""

    code: int
    name: str
    colour: str  # "#rrggbb"

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The colour as an (r, g, b) tuple of 0..255 integers."""
        return tuple(int(self.colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


FLAIR_CLASSES: tuple[FlairClass, ...] = (
    FlairClass(1, "building", "#db0e9a"),
    FlairClass(2, "pervious surface", "#938e7b"),
    FlairClass(3, "impervious surface", "#f80c00"),
    FlairClass(4, "bare soil", "#a97101"),
    FlairClass(5, "water", "#1553ae"),
    FlairClass(6, "coniferous", "#194a26"),
    FlairClass(7, "deciduous", "#46e483"),
    FlairClass(8, "brushwood", "#f3a60d"),
    FlairClass(9, "vineyard", "#660082"),
    FlairClass(10, "herbaceous vegetation", "#55ff00"),
    FlairClass(11, "agricultural land", "#fff30d"),
    FlairClass(12, "plowed land", "#e4df7c"),
    FlairClass(13, "swimming pool", "#3de6eb"),
    FlairClass(14, "snow", "#ffffff"),
    FlairClass(15, "clear cut", "#8ab3a0"),
    FlairClass(16, "mixed", "#6b714f"),
    FlairClass(17, "ligneous", "#c5dc42"),
    FlairClass(18, "greenhouse", "#9999ff"),
    FlairClass(19, "other", "#000000"),
)

CLASS_BY_CODE: dict[int, FlairClass] = {c.code: c for c in FLAIR_CLASSES}
CODES: tuple[int, ...] = tuple(c.code for c in FLAIR_CLASSES)
N_CODES = max(CODES) + 1  # 20: pixel counts and confusion rows are indexed by code, 0 = no data


def class_name(code: int) -> str:
    """Name of a FLAIR code; 0 is "no data"."""
    if code == NODATA_CODE:
        return "no data"
    return CLASS_BY_CODE[code].name
