"""`flair:landcover_region` through processing.run: BD ORTHO-style folders in, styled VRT out.

Real QGIS offscreen, the real engine with a local Dask cluster of one worker process; the
delivery and the R,G,B,NIR checkpoint come from the engine venv's generators.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import processing
from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsRasterLayer

from flair_qgis.algorithms.landcover_region import product_sources, region_arguments

from .conftest import ENGINE_PYTHON, REPO, generate, needs_engine


class Recorder(QgsProcessingFeedback):
    """Keeps what the algorithm tells the user."""

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[str] = []
        self.progress: list[float] = []
        self.texts: list[str] = []
        self.commands: list[str] = []

    def pushInfo(self, info: str) -> None:  # noqa: N802
        self.infos.append(info)

    def setProgressText(self, text: str) -> None:  # noqa: N802
        self.texts.append(text)

    def pushCommandInfo(self, info: str) -> None:  # noqa: N802
        self.commands.append(info)

    def setProgress(self, progress: float) -> None:  # noqa: N802
        self.progress.append(progress)
        super().setProgress(progress)


def test_arguments_follow_the_parameters() -> None:
    rgb = product_sources("/d/RVB", "**/*.jp2", ["/x/extra.tif"])
    assert rgb == ["/d/RVB/**/*.jp2", "/x/extra.tif"]
    args = region_arguments(
        "/out",
        {"--rgb": rgb, "--irc": [], "--elevation": ["/e/*.tif"]},
        ["--model", "m.pth"],
        scheduler="tcp://h:8786",
        threads=2,
    )
    assert args == [
        "region",
        "/out",
        "--rgb",
        *rgb,
        "--elevation",
        "/e/*.tif",
        "--model",
        "m.pth",
        "--scheduler",
        "tcp://h:8786",
        "--threads-per-worker",
        "2",
        "--backend",
        "auto",
        "--download",
        "--progress",
        "json",
    ]
    assert product_sources("/d/RVB", "", []) == ["/d/RVB/**/*.{jp2,tif,tiff}"]


def test_checkpoint_field_names_every_checkpoint_type(qgis_app) -> None:
    """As the segmentation dialog's: .safetensors is a checkpoint too, in the label and in the
    file browser's filter."""
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("flair:landcover_region")
    checkpoint = alg.parameterDefinition("MODEL_FILE")
    assert "(.pth/.ckpt/.safetensors)" in checkpoint.description()
    assert "*.safetensors" in checkpoint.fileFilter() and "*.pth" in checkpoint.fileFilter()


@needs_engine
def test_region_from_folders_loads_the_styled_mosaic(qgis_app, tmp_path: Path) -> None:
    made = subprocess.run(
        [ENGINE_PYTHON, "-m", "tests.fixtures.bdortho", str(tmp_path / "bd")],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rgb_dir, irc_dir, suffix = made.stdout.split()
    checkpoint = tmp_path / "rgbi.pth"
    generate("checkpoint", str(checkpoint), "--channels", "4", "--logits", "19")
    out = tmp_path / "region"
    context, feedback = QgsProcessingContext(), Recorder()
    results = processing.run(
        "flair:landcover_region",
        {
            "RGB_FOLDER": rgb_dir,
            "IRC_FOLDER": irc_dir,
            "PATTERN": f"**/*{suffix}",
            "MODEL_FILE": str(checkpoint),
            "WORKERS": 1,
            "THREADS": 1,
            "OUTPUT_FOLDER": str(out),
        },
        context=context,
        feedback=feedback,
    )
    mosaic = results["OUTPUT"]
    assert Path(mosaic) == out / "landcover.vrt"
    layer = QgsRasterLayer(mosaic, "region", "gdal")
    assert layer.isValid() and (layer.width(), layer.height()) == (384, 384)
    assert context.willLoadLayerOnCompletion(mosaic)  # loaded, styled, when the run ends
    assert (out / "landcover.qml").is_file()
    blocks = json.loads((out / "manifest.json").read_text())["blocks"]
    assert [b["state"] for b in blocks.values()] == ["done"] * len(blocks)
    assert any(i.startswith("region: 1 block") for i in feedback.infos)  # the blocks' phase
    assert max(feedback.progress) == 100.0


@needs_engine
def test_region_at_its_defaults_on_a_geotiff_delivery(
    qgis_app, tmp_path: Path, monkeypatch
) -> None:
    """Only the folders given: the default pattern finds the GeoTIFF tiles in their subfolders,
    "Automatic" sends `--model auto`, and the engine picks, from the RVB and IRC products, the
    one model whose weights are in the weights folder (offline)."""
    from flair_qgis.algorithms.landcover_region import PRODUCTS

    made = subprocess.run(
        [ENGINE_PYTHON, "-m", "tests.fixtures.bdortho", str(tmp_path / "bd"), "--geotiff"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rgb_dir, irc_dir, suffix = made.stdout.split()
    assert suffix == ".tif"
    assert PRODUCTS.DEFAULT_PATTERN == "**/*.{jp2,tif,tiff}"  # the engine's table's default
    weights = tmp_path / "weights"
    weights.mkdir()
    registry = json.loads((REPO / "engine/models/cards/registry.json").read_text())
    rgbi = next(m for m in registry["models"] if m["name"] == "flair-inc-rgbi-15cl")
    generate(
        "checkpoint",
        str(weights / rgbi["source"]["filename"]),
        "--channels",
        "4",
        "--logits",
        "19",
    )
    monkeypatch.setenv("FLAIR_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "region"
    context, feedback = QgsProcessingContext(), Recorder()
    results = processing.run(
        "flair:landcover_region",
        {"RGB_FOLDER": rgb_dir, "IRC_FOLDER": irc_dir, "OUTPUT_FOLDER": str(out)},
        context=context,
        feedback=feedback,
    )
    command = feedback.commands[-1]
    assert "--model auto" in command and "--download" in command
    assert "**/*.{jp2,tif,tiff}" in command
    chosen = next(i for i in feedback.infos if i.startswith("model auto: "))
    assert chosen.startswith(
        "model auto: flair-inc-rgbi-15cl (R, G, B, NIR available as R=band 1, G=band 2, "
        "B=band 3, NIR=band 4, from the RVB and IRC products;"
    )
    assert feedback.texts[0] == "Checking the FLAIR engine\u2026"
    assert Path(results["OUTPUT"]) == out / "landcover.vrt"
    assert QgsRasterLayer(results["OUTPUT"], "region", "gdal").isValid()
    blocks = json.loads((out / "manifest.json").read_text())["blocks"]
    assert blocks and all(b["state"] == "done" for b in blocks.values())
