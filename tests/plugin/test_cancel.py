"""Cancel during a run: the engine process goes away and no file is left at the output."""

from __future__ import annotations

import os
from pathlib import Path

import processing
import pytest
from qgis.core import QgsProcessingException

from .conftest import generate, needs_engine
from .helpers import RecordingFeedback

pytestmark = needs_engine


def _engine_pids(marker: str) -> list[int]:
    """PIDs whose command line mentions `marker` (the output path)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "-m engine" in cmdline:
            pids.append(int(entry.name))
    return pids


class CancelOnFirstTile(RecordingFeedback):
    """Cancels as soon as inference reports progress, noting the engine's PIDs first."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.pids: list[int] = []

    def setProgress(self, progress: float) -> None:  # noqa: N802
        super().setProgress(progress)
        if progress > 0 and not self.isCanceled():
            self.pids = _engine_pids(self.marker)
            self.cancel()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_cancel_stops_the_engine_and_leaves_nothing(qgis_app, checkpoint5, tmp_path):
    big = tmp_path / "big.tif"
    generate("raster", str(big), "--width", "1024", "--height", "1024", "--bands", "5")
    output = tmp_path / "cancelled.tif"
    feedback = CancelOnFirstTile(str(output))
    with pytest.raises(QgsProcessingException, match="cancelled"):
        processing.run(
            "flair:landcover",
            {
                "INPUT": str(big),
                "MODEL_FILE": str(checkpoint5),
                "TILE_SIZE": 256,
                "MARGIN": 32,
                "DEVICE": 1,
                "OUTPUT": str(output),
                "CONFIDENCE": str(tmp_path / "conf.tif"),
            },
            feedback=feedback,
        )
    assert feedback.pids, "the engine was not seen running"
    assert not any(_alive(pid) for pid in feedback.pids)
    assert not output.exists() and not (tmp_path / "conf.tif").exists()
    assert not list(tmp_path.glob("cancelled*"))
