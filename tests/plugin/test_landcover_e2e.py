"""`flair:landcover` end to end with the real engine and a generated checkpoint."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import processing
import pytest
from osgeo import gdal
from qgis.core import (
    QgsFeature,
    QgsGeometry,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProcessingException,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor, QImage

from flair_qgis.classes import FLAIR_CLASSES
from flair_qgis.models import model_choices

from .conftest import REPO, needs_engine
from .helpers import RecordingFeedback, read_codes

pytestmark = needs_engine
FAST = {"TILE_SIZE": 256, "MARGIN": 32, "DEVICE": 1}  # CPU, small tiles: quick on 2 cores
COLOURS = {c.code: c.colour for c in FLAIR_CLASSES}
# MODEL's index of a registry model: 0 is "Automatic", the registry's models follow
RGBIE_15 = [m.name for m in model_choices()].index("flair-inc-rgbie-15cl")


@pytest.fixture(scope="module")
def run_result(qgis_app, raster5, checkpoint5, tmp_path_factory):
    out = tmp_path_factory.mktemp("landcover")
    feedback = RecordingFeedback()
    params = {
        "INPUT": str(raster5),
        "MODEL_FILE": str(checkpoint5),
        **FAST,
        "OUTPUT": str(out / "landcover.tif"),
        "CONFIDENCE": str(out / "confidence.tif"),
        "STATS": str(out / "stats.json"),
        "POLYGONS": str(out / "polygons.gpkg"),
    }
    results = processing.run("flair:landcover", params, feedback=feedback)
    return results, feedback, out


def test_outputs_written(run_result):
    results, feedback, out = run_result
    assert Path(results["OUTPUT"]) == out / "landcover.tif"
    for name in ("landcover.tif", "confidence.tif", "stats.json", "polygons.gpkg", "landcover.qml"):
        assert (out / name).exists(), name
    assert results["POLYGONS"] == str(out / "polygons.gpkg")
    assert feedback.progress[-1] == 100.0
    # the map's area in km², as the engine's log says it (ha only in per-class tables)
    assert any(i.startswith("Mapped 0.0033 km\u00b2: ") for i in feedback.infos)


def test_registry_model_without_weights(qgis_app, raster5, tmp_path, monkeypatch):
    """No weights anywhere and no hub: the dialog's message says what to download (file,
    size) and where to put it, in the dialog's words, before the model loads. The Sentinel-2
    source is passed on: whether the model takes it, the engine says."""
    monkeypatch.setenv("FLAIR_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException, match="could not be downloaded") as err:
        processing.run(
            "flair:landcover",
            {
                "INPUT": str(raster5),
                "MODEL": RGBIE_15,
                "SENTINEL2_SOURCE": 1,
                "DEVICE": 1,
                "OUTPUT": str(tmp_path / "none.tif"),
            },
            feedback=feedback,
        )
    command = feedback.commands[-1]
    assert "--model flair-inc-rgbie-15cl" in command and "--download" in command
    assert "--sentinel2 stac" in command
    message = str(err.value)
    assert "Model checkpoint (overrides Model) (MODEL_FILE)" in message
    assert "--" not in message and "FLAIR_WEIGHTS_DIR" not in message
    assert not (tmp_path / "none.tif").exists()
    first = message.splitlines()[0]
    assert "FLAIR-INC_rgbie_15cl_resnet34-unet_weights.pth (98 MB)" in first
    assert str(tmp_path) in first and len(message.splitlines()) <= 3


def test_band_defaults_are_the_engines(run_result):
    """No band set in the dialog: no --bands, so the engine's one band rule decides."""
    _, feedback, _ = run_result
    command = feedback.commands[-1]
    assert "-m engine predict" in command and "--bands" not in command
    assert "--progress json" in command and "--tile-size 256" in command


def test_codes_are_flair_codes(run_result):
    _, _, out = run_result
    _, rows = read_codes(out / "landcover.tif")
    values = {v for row in rows for v in row}
    assert values and values <= set(range(0, 20)) and values - {0}


def test_result_file_opens_styled(run_result):
    """The .qml beside the output styles the layer wherever it is opened."""
    _, _, out = run_result
    layer = QgsRasterLayer(str(out / "landcover.tif"), "landcover")
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    classes = renderer.classes()
    assert len(classes) == 19
    assert {c.value: c.color.name() for c in classes} == COLOURS
    labels = {c.value: c.label for c in classes}
    assert "building" in labels[1] and "herbaceous vegetation" in labels[10]
    assert 0 not in labels  # no data draws nothing


def test_run_and_load_applies_the_legend(qgis_app, raster5, checkpoint5, tmp_path):
    target = tmp_path / "loaded.tif"
    results = processing.runAndLoadResults(
        "flair:landcover",
        {
            "INPUT": str(raster5),
            "MODEL_FILE": str(checkpoint5),
            "EXTENT": "652000,652030,6861970,6862000 [EPSG:2154]",
            **FAST,
            "OUTPUT": str(target),
        },
    )
    layers = [
        lyr for lyr in QgsProject.instance().mapLayers().values() if Path(lyr.source()) == target
    ]
    assert results["OUTPUT"] == str(target) and layers
    assert layers[0].name() == f"{raster5.stem} - {checkpoint5.stem}"  # from the run record
    assert layers[0].renderer().type() == "paletted"
    assert len(layers[0].renderer().classes()) == 19
    assert layers[0].width() == 150  # 30 m at 0.2 m
    QgsProject.instance().removeAllMapLayers()


def test_rendered_png_has_official_colours(run_result, tmp_path):
    _, _, out = run_result
    layer, rows = read_codes(out / "landcover.tif")
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(layer.width(), layer.height()))
    settings.setBackgroundColor(QColor(255, 255, 255, 0))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    png = tmp_path / "flair_result.png"
    assert image.save(str(png), "PNG")
    checked = 0
    for r in range(2, len(rows) - 2, 17):
        for c in range(2, len(rows[0]) - 2, 13):
            code = rows[r][c]
            if code == 0:
                continue
            # only pixels whose neighbours share the class (no antialiasing at edges)
            if any(rows[r + dr][c + dc] != code for dr in (-1, 0, 1) for dc in (-1, 0, 1)):
                continue
            assert QColor(image.pixel(c, r)).name() == COLOURS[code], (r, c, code)
            checked += 1
    assert checked > 10
    if os.environ.get("FLAIR_UPDATE_DOCS_IMAGES"):
        shutil.copy(png, REPO / "docs" / "images" / "flair_result.png")


def test_vrt_layer_goes_through_the_temporary_export(qgis_app, raster5, checkpoint5, tmp_path):
    vrt = tmp_path / "mosaic.vrt"
    gdal.BuildVRT(str(vrt), [str(raster5)]).FlushCache()
    feedback = RecordingFeedback()
    results = processing.run(
        "flair:landcover",
        {
            "INPUT": str(vrt),
            "MODEL_FILE": str(checkpoint5),
            **FAST,
            "EXTENT": "652010,652050,6861960,6861990 [EPSG:2154]",
            "OUTPUT": str(tmp_path / "from_vrt.tif"),
        },
        feedback=feedback,
    )
    assert any("not a plain raster file: exporting 200 x 150 px" in i for i in feedback.infos)
    assert "--extent" not in feedback.commands[-1]  # the export already covers it
    layer = QgsRasterLayer(results["OUTPUT"], "out")
    assert (layer.width(), layer.height()) == (200, 150)


def test_in_memory_gdal_layer_is_exported(qgis_app, raster5, checkpoint5, tmp_path):
    gdal.Translate("/vsimem/flair_memory.tif", str(raster5), srcWin=[0, 0, 128, 96])
    layer = QgsRasterLayer("/vsimem/flair_memory.tif", "memory")
    assert layer.isValid()
    mask = QgsVectorLayer("Polygon?crs=EPSG:2154", "left half", "memory")
    feature = QgsFeature()
    feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(652000, 6861980, 652012.8, 6862000)))
    mask.dataProvider().addFeatures([feature])
    feedback = RecordingFeedback()
    results = processing.run(
        "flair:landcover",
        {
            "INPUT": layer,
            "MODEL_FILE": str(checkpoint5),
            "MASK": mask,
            **FAST,
            "OUTPUT": str(tmp_path / "from_memory.tif"),
        },
        feedback=feedback,
    )
    gdal.Unlink("/vsimem/flair_memory.tif")
    assert any("exporting 128 x 96 px" in i for i in feedback.infos)
    assert "--mask" in feedback.commands[-1]
    _, rows = read_codes(Path(results["OUTPUT"]))
    assert all(v == 0 for row in rows for v in row[70:])  # outside the mask: no data
    assert all(v != 0 for row in rows for v in row[:60])


def test_xyz_tiles_are_rendered_reprojected_and_exported(qgis_app, checkpoint3, tmp_path):
    """An XYZ layer (Web Mercator, rendered ARGB image) from local tiles: exported in the
    local UTM zone at 0.2 ground metres, its RGB used."""
    tile = tmp_path / "0" / "0" / "0.png"
    tile.parent.mkdir(parents=True)
    image = QImage(256, 256, QImage.Format.Format_RGB32)
    image.fill(QColor(120, 180, 60))
    assert image.save(str(tile))
    url = f"file://{tmp_path}/%7Bz%7D/%7Bx%7D/%7By%7D.png"
    layer = QgsRasterLayer(f"type=xyz&url={url}&zmin=0&zmax=0", "tiles", "wms")
    assert layer.isValid()
    feedback = RecordingFeedback()
    results = processing.run(
        "flair:landcover",
        {
            "INPUT": layer,
            "MODEL_FILE": str(checkpoint3),
            **FAST,
            "EXTENT": "261000,261020,6250000,6250020 [EPSG:3857]",
            "OUTPUT": str(tmp_path / "from_xyz.tif"),
        },
        feedback=feedback,
    )
    assert any("exporting 67 x 67 px at 0.2 m (EPSG:32631)" in i for i in feedback.infos)
    assert any("rendered image" in w for w in feedback.warnings)
    assert "--bands R=1,G=2,B=3 " in feedback.commands[-1]
    out = QgsRasterLayer(results["OUTPUT"], "out")
    assert out.crs().authid() == "EPSG:32631" and out.width() == 67


def test_export_beyond_the_pixel_budget_is_refused(qgis_app, raster5, tmp_path):
    vrt = tmp_path / "big.vrt"
    gdal.BuildVRT(str(vrt), [str(raster5)]).FlushCache()
    with pytest.raises(QgsProcessingException, match=r"320 x 256 = 81,920 pixels.*1,000"):
        processing.run(
            "flair:landcover",
            {"INPUT": str(vrt), "EXPORT_PIXEL_LIMIT": 1000, "OUTPUT": str(tmp_path / "never.tif")},
        )
    assert not (tmp_path / "never.tif").exists()


def test_engine_error_reaches_the_user(qgis_app, raster4, checkpoint5, tmp_path):
    """A 5-channel model on a 4-band input: the engine's own one-line message."""
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException) as err:
        processing.run(
            "flair:landcover",
            {
                "INPUT": str(raster4),
                "MODEL_FILE": str(checkpoint5),
                **FAST,
                "OUTPUT": str(tmp_path / "bad.tif"),
            },
            feedback=feedback,
        )
    message = str(err.value)
    assert not message.startswith("The FLAIR engine failed")  # the engine's error event
    assert "\n" not in message and "lacks E (elevation)" in message
    assert not (tmp_path / "bad.tif").exists()


def test_the_layer_is_named_after_the_model_the_engine_ran():
    """The done event's run record names the model (the engine's choice under Automatic);
    the plugin reads no log line for it."""
    from flair_qgis.algorithms.landcover import model_run

    done = {"run": {"model": {"name": "flair-inc-rgb-15cl", "architecture": "unet"}}}
    assert model_run(done) == "flair-inc-rgb-15cl"
    assert model_run({"run": {"model": {"name": "/w/unet5.pth"}}}) == "unet5"
    assert model_run({"outputs": {}, "log": ["model other (unet, R,G,B): ..."]}) == ""


def test_polygons_load_styled_named_and_beside_the_map(qgis_app, raster5, checkpoint5, tmp_path):
    """The polygons load as "<input> - <model> - polygons", categorised on `code` in the
    map's colours with the class names as labels; confidence and polygons sit in the map's
    layer-tree group."""
    from qgis.core import QgsRasterLayer as Raster

    project = QgsProject.instance()
    group = project.layerTreeRoot().addGroup("runs")
    layer = Raster(str(raster5), "ortho", "gdal")
    project.addMapLayer(layer, False)
    group.addLayer(layer)
    target = tmp_path / "map.tif"
    processing.runAndLoadResults(
        "flair:landcover",
        {
            "INPUT": layer.id(),
            "MODEL_FILE": str(checkpoint5),
            "EXTENT": "652000,652030,6861970,6862000 [EPSG:2154]",
            **FAST,
            "OUTPUT": str(target),
            "CONFIDENCE": str(tmp_path / "confidence.tif"),
            "POLYGONS": str(tmp_path / "polygons.gpkg"),
        },
    )
    by_name = {lyr.name(): lyr for lyr in project.mapLayers().values()}
    named = next(n for n, lyr in by_name.items() if Path(lyr.source()) == target)
    assert named == f"ortho - {Path(checkpoint5).stem}", named  # "<input> - <model>"
    assert f"{named} - polygons" in by_name, sorted(by_name)
    polygons = by_name[f"{named} - polygons"]
    assert isinstance(polygons, QgsVectorLayer)
    renderer = polygons.renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "code"
    categories = {int(c.value()): c for c in renderer.categories()}
    assert set(categories) == {c.code for c in FLAIR_CLASSES}
    for c in FLAIR_CLASSES:
        assert categories[c.code].label() == c.name
        assert categories[c.code].symbol().color().name() == c.colour.lower()
    root = project.layerTreeRoot()
    parents = {
        name: root.findLayer(by_name[name].id()).parent()
        for name in (named, f"{named} - confidence", polygons.name())
    }
    assert len({id(p) for p in parents.values()}) == 1, {k: p.name() for k, p in parents.items()}
    # a map in a group (QGIS 3.32+ loads results into one): its companions follow it there
    from flair_qgis.styling import gather_with_map

    map_node = root.findLayer(by_name[named].id())
    group.insertLayer(0, by_name[named])
    map_node.parent().removeChildNode(map_node)
    companions = [str(tmp_path / "confidence.tif"), str(tmp_path / "polygons.gpkg")]
    gather_with_map(project, str(target), companions)
    order = [n.layer().name() for n in group.children()]
    assert order[:3] == [named, f"{named} - confidence", polygons.name()] or order[:3] == [
        named,
        polygons.name(),
        f"{named} - confidence",
    ], order
    project.removeAllMapLayers()
    root.removeChildNode(group)


def test_help_panel_shows_the_placeholders_as_text(qgis_app):
    """The dialog's help panel renders the help as HTML: "<input> - <model>" must stay text,
    and the help's wording matches the dialog (confidence in percent, checkpoint types)."""
    from qgis.core import QgsApplication
    from qgis.PyQt.QtGui import QTextDocument

    alg = QgsApplication.processingRegistry().algorithmById("flair:landcover")
    document = QTextDocument()
    document.setHtml(alg.shortHelpString())
    shown = document.toPlainText()
    assert "Loaded as '<input> - <model>'" in shown
    assert "'<input> - <model> - polygons'" in shown
    assert "in percent (values 0 to 100)" in shown and "0-255" not in shown
    assert "(.pth/.ckpt/.safetensors)" in shown
    assert "' - '" not in shown
    elevation = alg.parameterDefinition("ELEVATION_BAND")
    assert "not set: automatic" in elevation.description()
    assert "Not set (automatic): band 1" in elevation.help()
