"""`flair:zones` end to end, and what both figure algorithms share (help, parameters): code
rasters and zones written with QGIS's own GDAL/OGR, figured by the real engine, through
`processing.run` and `qgis_process`."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import processing
import pytest
from osgeo import gdal
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsProject,
    QgsVectorLayer,
)

from .conftest import needs_engine, qgis_process
from .figures_fixtures import (
    ZONES,
    by_name,
    halves_map,
    write_zones,
)
from .helpers import RecordingFeedback


@needs_engine
def test_zones_areas_per_zone(qgis_app, tmp_path):
    map_path = halves_map(tmp_path / "map.tif")
    zones = write_zones(tmp_path / "zones.gpkg", ZONES)
    table = tmp_path / "long.csv"
    feedback = RecordingFeedback()
    results = processing.run(
        "flair:zones",
        {
            "MAP": map_path,
            "ZONES": zones,
            "FIELD": "name",
            "OUTPUT": str(tmp_path / "by_zone.gpkg"),
            "TABLE": str(table),
        },
        feedback=feedback,
    )
    layer = QgsVectorLayer(results["OUTPUT"], "by zone", "ogr")
    assert layer.isValid() and layer.featureCount() == 3
    names = layer.fields().names()
    for column in ("name", "zone_m2", "mapped_ha", "outside_m2", "building_ha", "deciduous_pct"):
        assert column in names, names
    features = by_name(layer)
    west, whole, east = features["west"], features["whole"], features["east_beyond"]
    # by hand: 32 x 64 px of 0.04 m2 = 81.92 m2 = 0.008192 ha of building
    assert west["building_ha"] == pytest.approx(0.008192, rel=1e-6)
    assert west["deciduous_ha"] == pytest.approx(0.0, abs=1e-9)
    assert whole["building_ha"] == pytest.approx(0.008192, rel=1e-6)
    assert whole["deciduous_pct"] == pytest.approx(50.0, rel=1e-6)
    # 3.2 m x 12.8 m inside the map (deciduous), 6.8 m x 12.8 m beyond it
    assert east["deciduous_m2"] == pytest.approx(40.96, rel=1e-6)
    assert east["outside_m2"] == pytest.approx(87.04, rel=1e-6)
    assert east["zone_m2"] == pytest.approx(128.0, rel=1e-6)
    assert feedback.progress and max(feedback.progress) == 100.0
    with Path(results["TABLE"]).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {"zone", "code", "class", "area_m2", "area_ha", "percent_of_mapped"} <= set(rows[0])
    building = [r for r in rows if r["zone"] == "west" and r["class"] == "building"]
    assert float(building[0]["area_m2"]) == pytest.approx(81.92, rel=1e-6)


@needs_engine
def test_zones_from_a_memory_layer_loads_named(qgis_app, tmp_path):
    """A layer that is no file (a memory layer) goes to the engine as a temporary GeoPackage;
    the result loads as "<zones> - land cover by zone". The map may be a VRT (a region's)."""
    map_path = str(tmp_path / "region.vrt")
    gdal.BuildVRT(map_path, [halves_map(tmp_path / "map.tif")]).FlushCache()
    memory = QgsVectorLayer("Polygon?crs=EPSG:2154&field=name:string", "communes", "memory")
    features = []
    for name, wkt in ZONES.items():
        feature = QgsFeature(memory.fields())
        feature.setAttribute("name", name)
        feature.setGeometry(QgsGeometry.fromWkt(wkt))
        features.append(feature)
    memory.dataProvider().addFeatures(features)
    QgsProject.instance().addMapLayer(memory)
    try:
        results = processing.runAndLoadResults(
            "flair:zones",
            {"MAP": map_path, "ZONES": memory.id(), "OUTPUT": str(tmp_path / "z.gpkg")},
        )
        assert Path(results["OUTPUT"]).exists()
        loaded = QgsProject.instance().mapLayersByName("communes - land cover by zone")
        assert loaded and loaded[0].featureCount() == 3
        assert "building_pct" in loaded[0].fields().names()
        whole = by_name(loaded[0])["whole"]
        assert whole["building_m2"] == pytest.approx(81.92, rel=1e-6)
    finally:
        QgsProject.instance().removeAllMapLayers()


@needs_engine
def test_qgis_process_runs_zones(installed_plugins, tmp_path):
    map_path = halves_map(tmp_path / "map.tif")
    zones = write_zones(tmp_path / "zones.gpkg", ZONES)
    output, table = tmp_path / "headless.gpkg", tmp_path / "headless.csv"
    proc = qgis_process(
        installed_plugins,
        "run",
        "flair:zones",
        "--",
        f"MAP={map_path}",
        f"ZONES={zones}",
        "FIELD=name",
        f"OUTPUT={output}",
        f"TABLE={table}",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert output.is_file() and table.is_file()
    assert "building_ha" in QgsVectorLayer(str(output), "z", "ogr").fields().names()


@pytest.mark.parametrize("algorithm_id", ["flair:zones", "flair:change"])
def test_help_speaks_the_dialogs_words(qgis_app, algorithm_id):
    alg = QgsApplication.processingRegistry().algorithmById(algorithm_id)
    text = alg.shortHelpString()
    assert "--" not in text and "Qgs" not in text
    for parameter in alg.parameterDefinitions():
        assert not re.search(rf"\b{parameter.name()}\b", text), parameter.name()
        assert f"<b>{parameter.description()}" in text, parameter.description()
    assert "NeurIPS" in text


def test_parameters_are_the_public_api(qgis_app):
    from flair_qgis.compat import FLAG_ADVANCED, FLAG_OPTIONAL

    registry = QgsApplication.processingRegistry()
    zones, change = registry.algorithmById("flair:zones"), registry.algorithmById("flair:change")
    assert zones.displayName() == "Land-cover statistics by zone"
    assert change.displayName() == "Land-cover change"
    assert [p.name() for p in zones.parameterDefinitions()] == [
        "MAP",
        "ZONES",
        "FIELD",
        "OUTPUT",
        "TABLE",
    ]
    assert [p.name() for p in change.parameterDefinitions()] == [
        "BEFORE",
        "AFTER",
        "ZONES",
        "FIELD",
        "GROUPS",
        "GRID",
        "OUTPUT_FOLDER",
    ]
    assert zones.parameterDefinition("FIELD").parentLayerParameterName() == "ZONES"
    assert change.parameterDefinition("FIELD").parentLayerParameterName() == "ZONES"
    for alg, name in ((zones, "FIELD"), (zones, "TABLE"), (change, "ZONES"), (change, "GROUPS")):
        assert alg.parameterDefinition(name).flags() & FLAG_OPTIONAL, name
    for name in ("GROUPS", "GRID"):
        assert change.parameterDefinition(name).flags() & FLAG_ADVANCED, name
    assert change.parameterDefinition("GRID").options() == [
        "the later map's (AFTER)",
        "the earlier map's (BEFORE)",
    ]
    outputs = {o.name(): o.type() for o in change.outputDefinitions()}
    assert outputs["REPORT"] == "outputHtml" and outputs["CHANGE"] == "outputRaster"
    assert {"TRANSITIONS", "ZONES_OUTPUT", "LAND_TAKE"} <= set(outputs)


def test_land_take_line_from_the_csv(tmp_path):
    from flair_qgis.algorithms.change import land_take_ha, land_take_line

    table = tmp_path / "land_take.csv"
    table.write_text(
        "figure,area_m2,area_ha,definition\n"
        "land_take,1024.0000,0.102400,x\nrenaturation,0.0000,0.000000,y\n"
        "net,1024.0000,0.102400,z\nchanged,1024.0000,0.102400,a\n"
        "compared,4096.0000,0.409600,b\n",
        encoding="utf-8",
    )
    figures = land_take_ha({}, table)
    assert math.isclose(figures["net"], 0.1024)
    # without the table, the done event's figures
    assert land_take_ha({"land_take_ha": 2.5}, tmp_path / "absent.csv") == {"land_take": 2.5}
    line = land_take_line(figures)
    assert line.startswith("Land take 0.1024 ha, renaturation 0.0000 ha, net land take 0.1024")
