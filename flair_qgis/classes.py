"""The FLAIR nomenclature as the plugin shows it: 19 classes, codes 1 to 19, 0 = no data.

The table itself is the engine's (`engine/classes.py`, plain Python), loaded from the engine
source the plugin ships (`flair_qgis.engine_shared`): one list of names and colours for the
engine's map styles and the plugin's legends.
"""

from __future__ import annotations

from .engine_shared import engine_module

_CLASSES = engine_module("classes")

NODATA_CODE: int = _CLASSES.NODATA_CODE
FlairClass = _CLASSES.FlairClass
FLAIR_CLASSES: tuple = _CLASSES.FLAIR_CLASSES


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
