"""FLAIR-HUB models through qgis_process: an IR model on a 3-band IRC raster (its bands
described NIR, R, G, no band mapping given) and an RGB model on an RGB raster; a styled map and
statistics come back. Checkpoints are generated in IGN's published layout under IGN's file
names (MODEL_FILE), so the engine finds their registry cards by name."""

from __future__ import annotations

import csv
import subprocess

import pytest
from qgis.core import QgsRasterLayer

from .conftest import ENGINE_PYTHON, REPO, needs_engine, qgis_process


def flairhub(*args: str) -> str:
    """Run the FLAIR-HUB fixture generator in the engine venv; returns the path it printed."""
    done = subprocess.run(
        [ENGINE_PYTHON, "-m", "tests.fixtures.flairhub_checkpoint", *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.stdout.strip().splitlines()[-1]


@needs_engine
@pytest.mark.parametrize("kind", ["ir", "rgb"])
def test_qgis_process_flairhub(installed_plugins, fixtures_dir, tmp_path, kind):
    if kind == "ir":
        raster = flairhub("irc", str(tmp_path / "irc.tif"), "300", "--seed", "2")
        model = flairhub("checkpoint", str(fixtures_dir), "flair-hub-ir-convnextv2tiny-upernet")
    else:
        raster = flairhub("irc", str(tmp_path / "rgb.tif"), "300", "--seed", "3")
        from osgeo import gdal

        ds = gdal.Open(raster, gdal.GA_Update)
        for i, interp in enumerate((gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand)):
            band = ds.GetRasterBand(i + 1)
            band.SetDescription("")
            band.SetColorInterpretation(interp)
        ds = None
        model = flairhub("checkpoint", str(fixtures_dir), "flair-hub-rgb-swintiny-upernet")
    output = tmp_path / f"map_{kind}.tif"
    stats = tmp_path / f"{kind}.csv"
    proc = qgis_process(
        installed_plugins,
        "run",
        "flair:landcover",
        "--",
        f"INPUT={raster}",
        f"MODEL_FILE={model}",
        f"OUTPUT={output}",
        f"STATS={stats}",
        cwd=tmp_path,
    )
    text = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, text
    expected_channels = "NIR,R,G" if kind == "ir" else "R,G,B"
    assert expected_channels in text  # the engine's log line: which bands fed which channel
    layer = QgsRasterLayer(str(output), kind)
    assert layer.isValid() and (layer.width(), layer.height()) == (300, 300)
    assert layer.renderer().type() == "paletted" and len(layer.renderer().classes()) == 19
    with open(stats, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and sum(float(r.get("percent", r.get("share_pct", 0)) or 0) for r in rows) > 0
