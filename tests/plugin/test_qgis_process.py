"""The zipped plugin, unpacked into an empty plugin folder, through qgis_process."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
from qgis.core import QgsRasterLayer

from .conftest import needs_engine, qgis_process


def test_zip_layout(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as archive:
        names = set(archive.namelist())
    assert plugin_zip.name == "flair_qgis-0.1.0.zip"
    for member in (
        "flair_qgis/__init__.py",
        "flair_qgis/metadata.txt",
        "flair_qgis/LICENSE",
        "flair_qgis/resources/flair.png",
        "flair_qgis/provider.py",
        "flair_qgis/engine_src/pyproject.toml",
        "flair_qgis/engine_src/README.md",
        "flair_qgis/engine_src/engine/__init__.py",
        "flair_qgis/engine_src/engine/cli.py",
        "flair_qgis/engine_src/engine/health.py",
        # the model list of the dialog is read from the engine's own registry
        "flair_qgis/engine_src/engine/models/cards/registry.json",
    ):
        assert member in names, member
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert all(n.startswith("flair_qgis/") for n in names)


def test_qgis_process_finds_the_algorithms(installed_plugins):
    listing = qgis_process(installed_plugins, "list", timeout=180)
    assert "flair:landcover" in listing.stdout, listing.stdout[-2000:] + listing.stderr[-2000:]
    assert "flair:install_engine" in listing.stdout and "flair:evaluate" in listing.stdout
    help_text = qgis_process(installed_plugins, "help", "flair:landcover", timeout=180)
    assert "SENTINEL2_SOURCE" in help_text.stdout and "BAND_NIR" in help_text.stdout
    # readable on a terminal: no HTML, the legend as lines, each parameter's help once
    assert "<td" not in help_text.stdout and "<li>" not in help_text.stdout
    assert "  1  #db0e9a  building" in help_text.stdout
    assert help_text.stdout.count("Band holding near infrared") <= 1


def test_zipped_plugin_offers_the_engines_models(installed_plugins):
    """Unpacked from the zip, the plugin reads the registry shipped in engine_src."""
    registry = json.loads(
        (installed_plugins / "flair_qgis/engine_src/engine/models/cards/registry.json").read_text()
    )
    proc = qgis_process(installed_plugins, "--json", "help", "flair:landcover", timeout=180)
    listed = json.loads(proc.stdout)["parameters"]["MODEL"]["available_options"]
    options = [listed[str(i)] for i in range(len(listed))]  # keyed by index, as text
    assert options[0].startswith("Automatic")
    assert len(options) == len(registry["models"]) + 1
    assert all(m["name"] in o for m, o in zip(registry["models"], options[1:], strict=True))


@needs_engine
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_qgis_process_run(installed_plugins, raster5, checkpoint5, tmp_path, as_json):
    """The text run uses paths relative to its working folder, as typed at a shell: the
    engine runs elsewhere, so the plugin must hand it absolute paths."""
    output = tmp_path / "headless.tif"
    args = ["--json"] if as_json else []
    if as_json:
        paths = [f"INPUT={raster5}", f"STATS={tmp_path / 'stats.csv'}", f"OUTPUT={output}"]
    else:
        shutil.copy(raster5, tmp_path / "ortho.tif")
        paths = ["INPUT=ortho.tif", "STATS=stats.csv", "OUTPUT=headless.tif"]
    proc = qgis_process(
        installed_plugins,
        *args,
        "run",
        "flair:landcover",
        "--",
        f"MODEL_FILE={checkpoint5}",
        "TILE_SIZE=256",
        "MARGIN=32",
        "DEVICE=1",
        *paths,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert output.exists() and (tmp_path / "stats.csv").exists()
    if as_json:
        result = json.loads(proc.stdout)
        assert result["results"]["OUTPUT"] == str(output)
        assert result["algorithm_details"]["id"] == "flair:landcover"
    else:
        assert f"OUTPUT:\t{output}" in proc.stdout
    layer = QgsRasterLayer(str(output), "headless")
    assert layer.renderer().type() == "paletted" and len(layer.renderer().classes()) == 19
