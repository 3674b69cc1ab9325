"""The FLAIR nomenclature as the plugin shows it: 19 classes, codes 1 to 19, 0 = no data.

Kept in step with `engine/classes.py` (a test compares them); the plugin cannot import the
engine package because the engine lives in another Python environment.
"""

from __future__ import annotations

from typing import NamedTuple

NODATA_CODE = 0


class FlairClass(NamedTuple):
    """One class of the FLAIR nomenclature with its official colour."""

    code: int
    name: str
    colour: str  # "#rrggbb"


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


def class_table_html() -> str:
    """The legend as an HTML table, for the algorithms' help text."""
    rows = "".join(
        f'<tr><td>{c.code}</td><td style="background-color:{c.colour}">'
        f"&nbsp;&nbsp;&nbsp;&nbsp;</td><td>{c.name}</td></tr>"
        for c in FLAIR_CLASSES
    )
    return f"<table><tr><th>Code</th><th>Colour</th><th>Class</th></tr>{rows}</table>"


def class_table_text() -> str:
    """The legend as plain lines ("  1  #db0e9a  building"), for the command line's help."""
    return "\n".join(f"{c.code:>3}  {c.colour}  {c.name}" for c in FLAIR_CLASSES)


CITATION = (
    "Garioud A., Gonthier N., Landrieu L., De Wit A., Valette M., Poupée M., Giordano S., "
    "Wattrelos B. (2023). FLAIR: a Country-Scale Land Cover Semantic Segmentation Dataset From "
    "Multi-Source Optical Imagery. NeurIPS 2023 Datasets and Benchmarks. "
    "Models: IGN FLAIR-INC (Hugging Face IGNF), licence Etalab 2.0."
)
