"""`flair:zones` and `flair:change` end to end: code rasters and zones written with QGIS's own
GDAL/OGR, figured by the real engine, through `processing.run`, `qgis_process` and a model."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import processing
import pytest
from osgeo import gdal, ogr, osr
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsProcessingException,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

from .conftest import generate, needs_engine, qgis_process
from .helpers import RecordingFeedback

ORIGIN = (652000.0, 6862000.0)  # Lambert-93, as the fixtures of conftest
FAST = {"DEVICE": 1, "TILE_SIZE": 256, "MARGIN": 32}


def write_codes(path: Path, rows: list[list[int]], res_m: float = 0.2) -> str:
    """A one-band GeoTIFF of FLAIR codes (0 = no data) in EPSG:2154 at `ORIGIN`."""
    height, width = len(rows), len(rows[0])
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((ORIGIN[0], res_m, 0.0, ORIGIN[1], 0.0, -res_m))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(2154)
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(0)
    band.WriteRaster(0, 0, width, height, bytes(v for row in rows for v in row))
    ds = None
    return str(path)


def box(x0: float, y0: float, x1: float, y1: float) -> str:
    """A rectangle in metres from `ORIGIN` (x to the east, y to the south), as WKT."""
    (ox, oy) = ORIGIN
    left, right, top, bottom = ox + x0, ox + x1, oy - y0, oy - y1
    return (
        f"POLYGON (({left} {bottom}, {right} {bottom}, {right} {top}, {left} {top}, "
        f"{left} {bottom}))"
    )


# 64 x 64 px at 0.2 m = 12.8 m square: left half building (1), right half deciduous (7)
ZONES = {
    "west": box(0.0, 0.0, 6.4, 12.8),  # the building half: 81.92 m2
    "whole": box(0.0, 0.0, 12.8, 12.8),  # both halves
    "east_beyond": box(9.6, 0.0, 19.6, 12.8),  # 3.2 m inside the map, 6.8 m beyond it
}


def write_zones(path: Path, zones: dict[str, str]) -> str:
    """A GeoPackage of polygons (layer "communes") with a text field `name`."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(2154)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("communes", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    for name, wkt in zones.items():
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("name", name)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    ds = None
    return str(path)


def halves_map(path: Path) -> str:
    return write_codes(path, [[1 if c < 32 else 7 for c in range(64)] for _ in range(64)])


def by_name(layer: QgsVectorLayer) -> dict[str, QgsFeature]:
    return {f["name"]: f for f in layer.getFeatures()}


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


def two_dates(tmp_path: Path) -> tuple[str, str]:
    """1 m pixels, 64 x 64. Before: columns 0-15 building, the rest herbaceous (10). After:
    columns 0-31 building. Land take: 16 x 64 m2 = 0.1024 ha of herbaceous -> building."""
    before = [[1 if c < 16 else 10 for c in range(64)] for _ in range(64)]
    after = [[1 if c < 32 else 10 for c in range(64)] for _ in range(64)]
    return (
        write_codes(tmp_path / "before.tif", before, res_m=1.0),
        write_codes(tmp_path / "after.tif", after, res_m=1.0),
    )


@needs_engine
def test_change_outputs_styles_and_land_take(qgis_app, tmp_path):
    before, after = two_dates(tmp_path)
    zones = write_zones(
        tmp_path / "zones.gpkg",
        {"west": box(0.0, 0.0, 32.0, 64.0), "east": box(32.0, 0.0, 64.0, 64.0)},
    )
    feedback = RecordingFeedback()
    try:
        results = processing.runAndLoadResults(
            "flair:change",
            {
                "BEFORE": before,
                "AFTER": after,
                "ZONES": zones,
                "FIELD": "name",
                "OUTPUT_FOLDER": str(tmp_path / "change"),
            },
            feedback=feedback,
        )
        folder = tmp_path / "change"
        assert Path(results["OUTPUT_FOLDER"]) == folder
        assert Path(results["CHANGE"]) == folder / "change.tif"
        raster = QgsRasterLayer(results["CHANGE"], "change")
        assert raster.isValid()
        loaded = QgsProject.instance().mapLayersByName("Land-cover change")
        assert loaded and loaded[0].isValid()
        assert loaded[0].renderer().type() == "paletted"
        assert Path(results["REPORT"]).is_file()
        assert Path(results["LAND_TAKE"]).is_file()
        transitions = [
            lyr
            for lyr in QgsProject.instance().mapLayers().values()
            if lyr.name().startswith("Land-cover transitions")
        ]
        assert transitions and transitions[0].isValid()
        assert Path(transitions[0].source().split("|")[0]) == Path(results["TRANSITIONS"])
        rows = {f.attributes()[0]: f for f in transitions[0].getFeatures()}
        assert "herbaceous vegetation" in rows
        zones_out = QgsVectorLayer(results["ZONES_OUTPUT"], "zones", "ogr")
        assert zones_out.isValid() and zones_out.featureCount() == 2
        assert QgsProject.instance().mapLayersByName("zones - land-cover change by zone")
        lines = [i for i in feedback.infos if i.startswith("Land take")]
        assert len(lines) == 1, feedback.infos
        figures = dict(re.findall(r"([a-z][a-z ]*?) (-?[\d.]+) ha", lines[0].lower()))
        assert float(figures["land take"]) == pytest.approx(0.1024, abs=1e-4)
        assert float(figures["renaturation"]) == pytest.approx(0.0, abs=1e-4)
    finally:
        QgsProject.instance().removeAllMapLayers()


@needs_engine
def test_engine_errors_reach_the_user(qgis_app, tmp_path):
    map_path = halves_map(tmp_path / "map.tif")
    zones = write_zones(tmp_path / "zones.gpkg", ZONES)
    with pytest.raises(QgsProcessingException, match="no field 'nope'.*name"):
        processing.run(
            "flair:zones",
            {"MAP": map_path, "ZONES": zones, "FIELD": "nope", "OUTPUT": str(tmp_path / "o.gpkg")},
        )
    groups = tmp_path / "groups.json"
    groups.write_text('{"artificial": [1], "natural": [1, 10]}', encoding="utf-8")
    before, after = two_dates(tmp_path)
    with pytest.raises(QgsProcessingException, match="in both groups"):
        processing.run(
            "flair:change",
            {
                "BEFORE": before,
                "AFTER": after,
                "GROUPS": str(groups),
                "OUTPUT_FOLDER": str(tmp_path / "c"),
            },
        )
    assert not (tmp_path / "c").exists()


@needs_engine
def test_cancel_leaves_no_change_folder(qgis_app, tmp_path):
    before, after = two_dates(tmp_path)
    feedback = RecordingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="cancelled"):
        processing.run(
            "flair:change",
            {"BEFORE": before, "AFTER": after, "OUTPUT_FOLDER": str(tmp_path / "c")},
            feedback=feedback,
        )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".c", "c"))]


def test_a_folder_holding_other_files_is_refused(qgis_app, tmp_path):
    """The engine replaces the whole output folder: only a new or empty folder, or an earlier
    run's, may be given."""
    from flair_qgis.algorithms.change import check_output_folder

    folder = tmp_path / "out"
    assert check_output_folder(folder) is False  # new: created by the engine
    folder.mkdir()
    assert check_output_folder(folder) is True  # empty: replaced
    for name in ("change.tif", "change.tif.aux.xml", "land_take.json", "zones.gpkg-wal"):
        (folder / name).write_text("x")
    assert check_output_folder(folder) is True  # an earlier run's
    (folder / "thesis.docx").write_text("x")
    with pytest.raises(QgsProcessingException, match="thesis.docx"):
        check_output_folder(folder)


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


def test_qgis_process_runs_change(installed_plugins, tmp_path):
    """Headless, as a script would: the change folder with its raster, table and report."""
    before, after = two_dates(tmp_path)
    folder = tmp_path / "headless_change"
    proc = qgis_process(
        installed_plugins,
        "run",
        "flair:change",
        "--",
        f"BEFORE={before}",
        f"AFTER={after}",
        f"OUTPUT_FOLDER={folder}",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("change.tif", "change.qml", "transitions.csv", "land_take.csv", "report.html"):
        assert (folder / name).is_file(), name
    assert "Land take 0.1024 ha" in proc.stdout


def change_model() -> QgsProcessingModelAlgorithm:
    """Two flair:landcover runs (two dates of one place) feeding flair:change, built as the
    model designer builds it."""
    model = QgsProcessingModelAlgorithm("FLAIR change of two orthophotos", "tests")
    for name, label in (("ortho_before", "Earlier orthophoto"), ("ortho_after", "Later one")):
        model.addModelParameter(
            QgsProcessingParameterRasterLayer(name, label), QgsProcessingModelParameter(name)
        )
    model.addModelParameter(
        QgsProcessingParameterFile("weights", "Checkpoint"), QgsProcessingModelParameter("weights")
    )
    for child_id, source in (("before", "ortho_before"), ("after", "ortho_after")):
        child = QgsProcessingModelChildAlgorithm("flair:landcover")
        child.setChildId(child_id)
        child.addParameterSources(
            "INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter(source)]
        )
        child.addParameterSources(
            "MODEL_FILE", [QgsProcessingModelChildParameterSource.fromModelParameter("weights")]
        )
        for key, value in FAST.items():
            child.addParameterSources(
                key, [QgsProcessingModelChildParameterSource.fromStaticValue(value)]
            )
        model.addChildAlgorithm(child)
    change = QgsProcessingModelChildAlgorithm("flair:change")
    change.setChildId("change")
    for key, child_id in (("BEFORE", "before"), ("AFTER", "after")):
        change.addParameterSources(
            key, [QgsProcessingModelChildParameterSource.fromChildOutput(child_id, "OUTPUT")]
        )
    output = QgsProcessingModelOutput("folder", "Change folder")
    output.setChildOutputName("OUTPUT_FOLDER")
    output.setChildId("change")
    change.setModelOutputs({"folder": output})
    model.addChildAlgorithm(change)
    model.addModelParameter(
        QgsProcessingParameterFolderDestination("change:folder", "Change folder"),
        QgsProcessingModelParameter("change:folder"),
    )
    return model


@needs_engine
def test_change_in_a_model_after_two_segmentations(
    qgis_app, raster5, checkpoint5, fixtures_dir, tmp_path
):
    later = fixtures_dir / "ortho5_later.tif"
    if not later.exists():  # the same place as raster5, another image
        generate("raster", str(later), "--width", "320", "--height", "256", "--seed", "1")
    saved = tmp_path / "change.model3"
    assert change_model().toFile(str(saved))
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(saved))
    # "change:folder" on QGIS 3.22, named after the description on newer QGIS: ask the model
    (destination,) = [p.name() for p in model.destinationParameterDefinitions()]
    folder = tmp_path / "change"
    results = processing.run(
        model,
        {
            "ortho_before": str(raster5),
            "ortho_after": str(later),
            "weights": str(checkpoint5),
            destination: str(folder),
        },
    )
    assert Path(results[destination]) == folder
    for name in ("change.tif", "change.qml", "transitions.csv", "land_take.csv", "report.html"):
        assert (folder / name).is_file(), name


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
