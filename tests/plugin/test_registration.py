"""The provider, its algorithms and the plugin's metadata."""

from __future__ import annotations

import configparser
import importlib.util
import json
import sys

from qgis.core import QgsApplication, QgsPalettedRasterRenderer, QgsProcessingOutputHtml

from flair_qgis.compat import FLAG_ADVANCED, FLAG_OPTIONAL

from .conftest import REPO

LANDCOVER_PARAMETERS = [
    "INPUT",
    "BAND_RED",
    "BAND_GREEN",
    "BAND_BLUE",
    "BAND_NIR",
    "BAND_ELEVATION",
    "ELEVATION",
    "ELEVATION_BAND",
    "MODEL",
    "MODEL_FILE",
    "MODEL_CARD",
    "EXTENT",
    "MASK",
    "DEVICE",
    "BACKEND",
    "TILE_SIZE",
    "MARGIN",
    "BATCH_SIZE",
    "OUTPUT_RESOLUTION",
    "EXPORT_PIXEL_LIMIT",
    "SENTINEL2_SOURCE",
    "SENTINEL2_LOCATION",
    "YEAR",
    "ACQUISITION_DATE",
    "STRICT_SENTINEL2",
    "OUTPUT",
    "CONFIDENCE",
    "STATS",
    "POLYGONS",
]

_RESTORED: list = []  # the provider put back after test_class_factory_without_iface_and_unload


def test_provider_and_algorithms_registered(qgis_app):
    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("flair")
    assert provider is not None and provider.name() == "FLAIR"
    names = {a.id(): a.displayName() for a in provider.algorithms()}
    # the region algorithm (tests/plugin/test_region_plugin.py) may sit beside these
    assert {k: v for k, v in names.items() if k != "flair:landcover_region"} == {
        "flair:landcover": "FLAIR land-cover segmentation",
        "flair:install_engine": "Install or repair the FLAIR engine",
        "flair:evaluate": "Evaluate land-cover map",
        "flair:zones": "Land-cover statistics by zone",
        "flair:change": "Land-cover change",
    }


def test_landcover_parameters_are_the_public_api(qgis_app):
    alg = QgsApplication.processingRegistry().algorithmById("flair:landcover")
    assert [p.name() for p in alg.parameterDefinitions()] == LANDCOVER_PARAMETERS
    for param in alg.parameterDefinitions():
        assert param.help(), f"{param.name()} has no help text"
    model = alg.parameterDefinition("MODEL")
    assert model.options()[0].startswith("Automatic") and model.defaultValue() == 0
    advanced = {p.name() for p in alg.parameterDefinitions() if p.flags() & FLAG_ADVANCED}
    assert {"TILE_SIZE", "MARGIN", "BATCH_SIZE", "STRICT_SENTINEL2"} <= advanced
    # only U-T&T models use the Sentinel-2 fields: out of the main section
    assert {"SENTINEL2_SOURCE", "SENTINEL2_LOCATION", "YEAR", "ACQUISITION_DATE"} <= advanced
    assert alg.parameterDefinition("ACQUISITION_DATE").flags() & FLAG_OPTIONAL
    assert alg.parameterDefinition("STRICT_SENTINEL2").defaultValue() is False
    for name in ("CONFIDENCE", "STATS", "POLYGONS"):
        assert alg.parameterDefinition(name).flags() & FLAG_OPTIONAL
    help_text = alg.shortHelpString()
    assert "herbaceous vegetation" in help_text and "NeurIPS" in help_text
    # the help names parameters as the form shows them, and says what the defaults do
    assert "<b>Band for near infrared</b>" in help_text and "<b>BAND_NIR</b>" not in help_text
    assert "automatic (the engine's 1280" in help_text  # TILE_SIZE: not "512"


def test_model_list_is_the_engines_registry(qgis_app):
    """MODEL offers "Automatic", then every model of engine/models/cards/registry.json in its
    order: a model added to the engine appears without a plugin change."""
    registry = json.loads((REPO / "engine/models/cards/registry.json").read_text())
    names = [m["name"] for m in registry["models"]]
    options = (
        QgsApplication.processingRegistry()
        .algorithmById("flair:landcover")
        .parameterDefinition("MODEL")
        .options()
    )
    assert len(options) == len(names) + 1
    assert [n in o for n, o in zip(names, options[1:], strict=True)] == [True] * len(names)


def test_model_list_reads_any_registry_file(tmp_path):
    from flair_qgis.models import read_registry

    path = tmp_path / "registry.json"
    path.write_text(
        json.dumps(
            {
                "default": "a",
                "models": [
                    {
                        "name": "a",
                        "title": "Model A",
                        "channels": ["R", "G", "B"],
                        "architecture": "unet",
                    },
                    {"title": "no name: skipped"},
                    {"name": "b", "channels": ["NIR", "R", "G"], "architecture": "flairhub-unet"},
                ],
            }
        )
    )
    models = read_registry(path)
    assert [(m.name, m.title, m.channels, m.architecture) for m in models] == [
        ("a", "Model A", ("R", "G", "B"), "unet"),
        ("b", "b", ("NIR", "R", "G"), "flairhub-unet"),
    ]


def test_command_line_help_is_plain_text(qgis_app):
    from flair_qgis.algorithms.landcover_params import landcover_help

    text = landcover_help(plain=True)
    assert "<" not in text and "  1  #db0e9a  building" in text
    assert "BAND_NIR" not in text  # qgis_process lists the parameters itself


def test_evaluate_outputs(qgis_app):
    alg = QgsApplication.processingRegistry().algorithmById("flair:evaluate")
    assert [p.name() for p in alg.parameterDefinitions()] == [
        "PREDICTION",
        "REFERENCE",
        "MASK",
        "REPORT",
        "REPORT_HTML",
    ]
    outputs = {o.name(): o for o in alg.outputDefinitions()}
    assert set(outputs) >= {"MIOU", "OVERALL_ACCURACY", "METRICS", "REPORT", "CONFUSION"}
    assert isinstance(outputs["REPORT_HTML"], QgsProcessingOutputHtml)  # the Results Viewer


def test_class_factory_without_iface_and_unload(qgis_app):
    import flair_qgis

    registry = QgsApplication.processingRegistry()
    session_provider = registry.providerById("flair")
    registry.removeProvider(session_provider)
    try:
        plugin = flair_qgis.classFactory(None)
        plugin.initProcessing()
        assert registry.algorithmById("flair:landcover") is not None
        second = flair_qgis.classFactory(None)
        second.initProcessing()  # refused: same id; unload must not touch the first
        second.unload()
        assert registry.providerById("flair") is not None
        plugin.unload()
        assert registry.providerById("flair") is None
    finally:
        from flair_qgis.provider import FlairProvider

        # Keep the Python object alive: the registry holds only the C++ side, and a collected
        # wrapper takes the provider's algorithms with it (later tests would not find them).
        _RESTORED.append(FlairProvider())
        registry.addProvider(_RESTORED[-1])


def test_metadata_is_complete():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "metadata.txt", encoding="utf-8")
    general = parser["general"]
    for key in (
        "name",
        "description",
        "about",
        "version",
        "author",
        "email",
        "repository",
        "tracker",
        "homepage",
        "tags",
        "category",
        "icon",
        "changelog",
    ):
        assert general.get(key, "").strip(), key
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["qgisMaximumVersion"] == "4.99"
    assert general["supportsQt6"] == "True"
    assert general["hasProcessingProvider"] == "yes"
    assert (REPO / general["icon"]).exists()
    assert "GNU GENERAL PUBLIC LICENSE" in (REPO / "LICENSE").read_text()


def test_plugin_classes_are_the_engines():
    """The plugin's legend is engine/classes.py itself, loaded by path (stdlib only), not a
    copy; read here again straight from the file to compare."""
    spec = importlib.util.spec_from_file_location("engine_classes", REPO / "engine" / "classes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["engine_classes"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    from flair_qgis.classes import FLAIR_CLASSES, NODATA_CODE
    from flair_qgis.engine_shared import engine_module

    assert FLAIR_CLASSES is engine_module("classes").FLAIR_CLASSES
    assert [(c.code, c.name, c.colour) for c in FLAIR_CLASSES] == [
        (c.code, c.name, c.colour) for c in module.FLAIR_CLASSES
    ]
    assert [c.code for c in FLAIR_CLASSES] == list(range(1, 20)) and NODATA_CODE == 0


def test_palette_has_the_19_official_colours(qgis_app):
    from flair_qgis.styling import flair_palette

    palette = flair_palette()
    assert len(palette) == 19
    assert isinstance(palette[0], QgsPalettedRasterRenderer.Class)
    assert palette[0].value == 1 and palette[0].color.name() == "#db0e9a"
    assert palette[9].label == "10 herbaceous vegetation"
