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

    def pushInfo(self, info: str) -> None:  # noqa: N802
        self.infos.append(info)

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
        "--progress",
        "json",
    ]


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
