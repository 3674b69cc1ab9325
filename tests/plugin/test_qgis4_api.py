"""QGIS 4's API: the plugin names no enum alias that QGIS 4 removed.

With FLAIR_QGIS_STRICT_API=1 on a QGIS that marks its aliases (3.44 in CI), conftest.py removes
them before the plugin loads (strict_api.py), and these tests, with the provider's others, run
against what is left. Without it they check the same paths on whatever QGIS runs them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import processing
import pytest
import qgis.core
import qgis.gui
from qgis.core import QgsProcessing, QgsProject

from flair_qgis import compat
from flair_qgis.styling import CONFIDENCE_STOPS

from .conftest import REPO, STRICT_API_REMOVED, needs_engine
from .strict_api import strict_api_requested

FAST = {"TILE_SIZE": 256, "MARGIN": 32, "DEVICE": 1}


@pytest.mark.skipif(not strict_api_requested(), reason="FLAIR_QGIS_STRICT_API not set")
def test_strict_mode_removed_the_aliases():
    """The mode is real: hundreds of aliases gone, among them ones the plugin used to name."""
    assert len(STRICT_API_REMOVED) > 100, "this QGIS marks no aliases: strict mode is empty"
    assert "QgsProcessing.TypeRaster" in STRICT_API_REMOVED
    assert not hasattr(QgsProcessing, "TypeRaster")


def test_compat_names_resolve():
    """Every name the plugin takes from compat exists in the running QGIS."""
    names = [n for n in dir(compat) if n.isupper()]
    assert len(names) >= 12
    assert all(getattr(compat, n) is not None for n in names)
    assert compat.QAction.__name__ == "QAction"


def qgis_attributes_named(source: Path) -> set[str]:
    """Every `QgsClass.Name` and `Qgis.Name` written in a module, as "QgsClass.Name"."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = node.value.id
            if owner == "Qgis" or owner.startswith("Qgs"):
                names.add(f"{owner}.{node.attr}")
    return names


def test_every_qgis_attribute_the_plugin_names_exists():
    """Code paths no test reaches still name only what this QGIS has (in strict mode: what
    QGIS 4 has), read from the source itself."""
    named = set().union(*(qgis_attributes_named(p) for p in (REPO / "flair_qgis").rglob("*.py")))
    assert len(named) >= 5  # the scan reads the source (9 names when written)
    missing = []
    for name in sorted(named):
        owner, attr = name.split(".")
        cls = getattr(qgis.core, owner, None) or getattr(qgis.gui, owner, None)
        if cls is None or not hasattr(cls, attr):
            missing.append(name)
    assert not missing, f"not in this QGIS: {missing}"


@needs_engine
def test_run_and_load_styles_map_and_confidence(qgis_app, raster5, checkpoint5, tmp_path):
    """A full run that Processing loads: the map with the FLAIR legend, the confidence with its
    interpolated percentage ramp (the styling that used an alias QGIS 4 dropped)."""
    target, confidence = tmp_path / "map.tif", tmp_path / "confidence.tif"
    processing.runAndLoadResults(
        "flair:landcover",
        {
            "INPUT": str(raster5),
            "MODEL_FILE": str(checkpoint5),
            **FAST,
            "OUTPUT": str(target),
            "CONFIDENCE": str(confidence),
        },
    )
    layers = {Path(lyr.source()): lyr for lyr in QgsProject.instance().mapLayers().values()}
    try:
        assert layers[target].renderer().type() == "paletted"
        assert len(layers[target].renderer().classes()) == 19
        ramp = layers[confidence].renderer().shader().rasterShaderFunction()
        assert ramp.colorRampType() == compat.RAMP_LINEAR
        assert [i.value for i in ramp.colorRampItemList()] == [v for v, _ in CONFIDENCE_STOPS]
    finally:
        QgsProject.instance().removeAllMapLayers()
