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
    done = run_engine(
        _script(
            {"event": "start", "phase": "inference", "total": 4, "unit": "tiles", "device": "cpu"},
            {"event": "progress", "phase": "inference", "done": 2, "total": 4, "fraction": 0.5},
            {"event": "log", "level": "WARNING", "message": "careful"},
            {"event": "done", "outputs": {"output": "x.tif"}, "stats": {"n": 1}},
        ),
        feedback,
    )
    assert done["outputs"] == {"output": "x.tif"}
    assert any("Inference: 4 tiles" in i and "device: cpu" in i for i in feedback.infos)
    # model loading fills the first 3 %, a U-Net's inference 3 to 92 %
    assert 47.5 in feedback.progress and feedback.progress[-1] == 100.0
    assert feedback.warnings == ["careful"]


def test_error_event_message_reaches_the_user(qgis_app):
    with pytest.raises(QgsProcessingException, match="^band 7 does not exist$"):
        run_engine(
            _script(
                {"event": "error", "type": "InvalidInput", "message": "band 7 does not exist"},
                exit_code=2,
            ),
            Recorder(),
        )


def test_crash_without_error_event_shows_stderr(qgis_app):
    with pytest.raises(QgsProcessingException, match="engine failed: Segmentation fault"):
        run_engine(_script(exit_code=139, stderr="boom\nSegmentation fault\n"), Recorder())


def test_sentinel2_phase_shares_the_bar():
    mapper = ProgressMapper()
    assert mapper.percent("inference", 0.5) == 47.5
    mapper = ProgressMapper()
    assert mapper.percent("sentinel2", 0.0) == 3.0
    assert mapper.percent("sentinel2", 1.0) == 30.0
    assert mapper.percent("inference", 0.0) == 30.0
    assert mapper.percent("overviews", 1.0) == 96.0
    assert mapper.percent("polygons", 1.0) == 100.0
    assert ProgressMapper({}).percent("evaluate", 0.25) == 25.0


def test_one_tile_is_said_in_the_singular(qgis_app):
    feedback = Recorder()
    run_engine(
        _script(
            {"event": "start", "phase": "inference", "total": 1, "unit": "tiles", "area_km2": 0.12},
            {"event": "done", "outputs": {}, "stats": {}},
        ),
        feedback,
    )
    assert "Inference: 1 tile (area 0.12 km\u00b2)" in feedback.infos


def test_bar_moves_while_the_engine_is_silent(qgis_app):
    """Loading the model and a long single tile report nothing for seconds: the bar creeps
    forward (never back, never past the unit in progress) instead of sitting still."""
    feedback = Recorder()
    events = "".join(
        f"print({json.dumps(json.dumps(e))}, flush=True); time.sleep(0.7)\n"
        for e in (
            {"event": "start", "phase": "inference", "total": 1, "unit": "tiles"},
            {"event": "progress", "phase": "inference", "done": 1, "total": 1, "fraction": 1.0},
            {"event": "done", "outputs": {}, "stats": {}},
        )
    )
    run_engine([sys.executable, "-c", "import time; time.sleep(0.7)\n" + events], feedback)
    loading = [p for p in feedback.progress if p < 3.0]
    assert loading and all(0 < p < 3.0 for p in loading)  # before the first event
    during = [p for p in feedback.progress if 3.0 < p < 92.0]
    assert during  # within the single tile
    assert feedback.progress == sorted(feedback.progress) and feedback.progress[-1] == 100.0


def test_error_messages_pass_through_explain(qgis_app):
    script = _script(
        {"event": "error", "type": "InvalidInput", "message": "use --tile-size 512"}, exit_code=1
    )
    with pytest.raises(QgsProcessingException, match="^InvalidInput: use T$"):
        run_engine(
            script,
            Recorder(),
            explain=lambda kind, text: f"{kind}: {text.replace('--tile-size 512', 'T')}",
        )


STUBBORN = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # an engine that does not stop in time
folder = sys.argv[1]
for name in ("out.tif", ".out.tif.partial-1", ".out.qml.partial-1", ".out.tif.lock"):
    open(os.path.join(folder, name), "w").close()
print('{"event": "start", "phase": "inference", "total": 9, "unit": "tiles"}', flush=True)
time.sleep(60)
"""


class CancelAtStart(Recorder):
    def pushInfo(self, info):  # noqa: N802
        super().pushInfo(info)
        if info.startswith("Inference"):
            self.cancel()


def test_cancel_kills_a_stuck_engine_and_sweeps_what_it_left(qgis_app, tmp_path):
    """Cancel is a plain QgsProcessingException (QGIS 3.22 prints a traceback for subclasses);
    an engine that ignores SIGTERM is killed, and its output and hidden working files go."""
    (tmp_path / ".outside.tif.lock").write_text("")  # another destination's lock: not ours
    feedback = CancelAtStart()
    with pytest.raises(QgsProcessingException) as err:
        run_engine(
            [sys.executable, "-c", STUBBORN, str(tmp_path)],
            feedback,
            cleanup_paths=[tmp_path / "out.tif"],
        )
    assert type(err.value) is QgsProcessingException
    assert str(err.value) == "FLAIR run cancelled; no output was left behind."
    assert any("did not stop" in w for w in feedback.warnings)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".outside.tif.lock"]


class TextRecorder(Recorder):
    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def setProgressText(self, text):  # noqa: N802
        self.texts.append(text)


def test_time_remaining_for_runs_of_several_tiles_and_the_starting_text(qgis_app):
    """The engine's `eta_s` shows as time left while several tiles or blocks run (never for a
    single one); a run without a model says so before its first phase."""
    from flair_qgis.engine_runner import LOADING_TEXT, STARTING_TEXT, remaining_text

    assert remaining_text(42) == "about 40 s left"
    assert remaining_text(150) == "about 2 min left" or remaining_text(150) == "about 3 min left"
    assert remaining_text(4800) == "about 1 h 20 min left"
    feedback = TextRecorder()
    run_engine(
        _script(
            {"event": "start", "phase": "inference", "total": 12, "unit": "tiles"},
            {
                "event": "progress",
                "phase": "inference",
                "done": 3,
                "total": 12,
                "fraction": 0.25,
                "eta_s": 95.0,
            },
            {"event": "start", "phase": "polygons", "total": 1, "unit": "blocks"},
            {
                "event": "progress",
                "phase": "polygons",
                "done": 1,
                "total": 1,
                "fraction": 1.0,
                "eta_s": 0.0,
            },
            {"event": "done", "outputs": {}, "stats": {}},
        ),
        feedback,
    )
    assert feedback.texts[0] == LOADING_TEXT
    assert "Running the model on the tiles\u2026 about 2 min left" in feedback.texts
    assert not any(
        "left" in t for t in feedback.texts[feedback.texts.index("Building polygons\u2026") :]
    )
    quiet = TextRecorder()
    run_engine(
        _script({"event": "done", "outputs": {}, "stats": {}}), quiet, loading_text=STARTING_TEXT
    )
    assert quiet.texts[0] == "Starting the FLAIR engine\u2026" and "model" not in quiet.texts[0]
