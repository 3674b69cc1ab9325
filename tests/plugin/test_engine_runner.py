"""The JSON-lines adapter on its own: events to feedback, errors to exceptions.

These drive tiny stand-in scripts to check the adapter's edge cases (malformed lines, a crash
without an error event). Everything the real engine does is tested end to end elsewhere.
"""

from __future__ import annotations

import json
import sys

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from flair_qgis.engine_runner import ProgressMapper, run_engine


class Recorder(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.progress: list[float] = []
        self.infos: list[str] = []
        self.warnings: list[str] = []

    def setProgress(self, value):  # noqa: N802
        self.progress.append(value)
        super().setProgress(value)

    def pushInfo(self, info):  # noqa: N802
        self.infos.append(info)

    def pushWarning(self, warning):  # noqa: N802
        self.warnings.append(warning)


def _script(*events: dict, exit_code: int = 0, stderr: str = "") -> list[str]:
    lines = "".join(f"print({json.dumps(json.dumps(e))}, flush=True)\n" for e in events)
    tail = f"import sys; sys.stderr.write({stderr!r}); sys.exit({exit_code})\n"
    return [sys.executable, "-c", lines + "print('not json', flush=True)\n" + tail]


def test_events_become_progress_and_messages(qgis_app):
    feedback = Recorder()
    done = run_engine(_script(
        {"event": "start", "phase": "inference", "total": 4, "unit": "tiles", "device": "cpu"},
        {"event": "progress", "phase": "inference", "done": 2, "total": 4, "fraction": 0.5},
        {"event": "log", "level": "WARNING", "message": "careful"},
        {"event": "done", "outputs": {"output": "x.tif"}, "stats": {"n": 1}},
    ), feedback)
    assert done["outputs"] == {"output": "x.tif"}
    assert any("4 tiles" in i and "device: cpu" in i for i in feedback.infos)
    assert 46.0 in feedback.progress and feedback.progress[-1] == 100.0
    assert feedback.warnings == ["careful"]


def test_error_event_message_reaches_the_user(qgis_app):
    with pytest.raises(QgsProcessingException, match="^band 7 does not exist$"):
        run_engine(_script({"event": "error", "type": "InvalidInput",
                            "message": "band 7 does not exist"}, exit_code=2), Recorder())


def test_crash_without_error_event_shows_stderr(qgis_app):
    with pytest.raises(QgsProcessingException, match="engine failed: Segmentation fault"):
        run_engine(_script(exit_code=139, stderr="boom\nSegmentation fault\n"), Recorder())


def test_sentinel2_phase_shares_the_bar():
    mapper = ProgressMapper()
    assert mapper.percent("inference", 0.5) == 46.0
    mapper = ProgressMapper()
    assert mapper.percent("sentinel2", 1.0) == 30.0
    assert mapper.percent("inference", 0.0) == 30.0
    assert mapper.percent("overviews", 1.0) == 96.0
    assert mapper.percent("polygons", 1.0) == 100.0
    assert ProgressMapper({}).percent("evaluate", 0.25) == 25.0
