"""The JSON-lines adapter on its own: events to feedback, errors to exceptions.

These drive tiny stand-in scripts to check the adapter's edge cases (malformed lines, a crash
without an error event). Everything the real engine does is tested end to end elsewhere.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from flair_qgis.engine_progress import ProgressMapper
from flair_qgis.engine_runner import run_engine
from flair_qgis.engine_shared import engine_module

protocol = engine_module("protocol")
HELLO = protocol.hello("test")
REPAIR = '"Install or repair the FLAIR engine"'


class Recorder(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.progress: list[float] = []
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.debug: list[str] = []
        self.commands: list[str] = []

    def setProgress(self, value):  # noqa: N802
        self.progress.append(value)
        super().setProgress(value)

    def pushInfo(self, info):  # noqa: N802
        self.infos.append(info)

    def pushWarning(self, warning):  # noqa: N802
        self.warnings.append(warning)

    def pushDebugInfo(self, info):  # noqa: N802
        self.debug.append(info)

    def pushCommandInfo(self, info):  # noqa: N802
        self.commands.append(info)


def _script(*events: dict, exit_code: int = 0, stderr: str = "", hello=HELLO) -> list[str]:
    """A stand-in engine printing `events` after the handshake (`hello`: None for none)."""
    events = (hello, *events) if hello is not None else events
    lines = "".join(f"print({json.dumps(json.dumps(e))}, flush=True)\n" for e in events)
    tail = f"import sys; sys.stderr.write({stderr!r}); sys.exit({exit_code})\n"
    return [sys.executable, "-c", lines + "print('not json', flush=True)\n" + tail]


def test_events_become_progress_and_messages(qgis_app):
    feedback = Recorder()
    done = run_engine(
        _script(
            {"event": "start", "phase": "inference", "total": 4, "unit": "tiles", "device": "cpu"},
            {"event": "progress", "phase": "inference", "done": 2, "total": 4, "fraction": 0.5},
            protocol.log("careful", "WARNING"),
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
    feedback = Recorder()
    with pytest.raises(QgsProcessingException, match="^band 7 does not exist$"):
        run_engine(
            _script(
                protocol.error("invalid_input", "InvalidInput", "band 7 does not exist"),
                exit_code=2,
            ),
            feedback,
        )
    # the engine's own words and fields stay in the log's detail level
    assert any("invalid_input: band 7 does not exist" in d for d in feedback.debug)


def test_an_engine_too_new_is_refused_with_the_fix(qgis_app):
    newer = {**HELLO, "protocol": protocol.VERSION + 1}
    with pytest.raises(QgsProcessingException) as err:
        run_engine(_script(protocol.start("inference", 1, "tiles"), hello=newer), Recorder())
    message = str(err.value)
    assert "newer than this plugin" in message and f"protocol {protocol.VERSION + 1}" in message
    assert REPAIR in message


def test_an_engine_too_old_is_refused_with_the_fix(qgis_app):
    """An engine from before the handshake prints its events without a hello."""
    old = {"event": "error", "type": "InvalidInput", "message": "use --tile-size 512"}
    with pytest.raises(QgsProcessingException) as err:
        run_engine(_script(old, exit_code=1, hello=None), Recorder())
    message = str(err.value)
    assert "older than this plugin" in message and REPAIR in message
    assert "--tile-size" not in message
    older = {**HELLO, "protocol": protocol.OLDEST_READ - 1}
    with pytest.raises(QgsProcessingException, match="older than this plugin"):
        run_engine(_script(hello=older), Recorder())


def test_an_engine_that_stops_before_the_handshake_is_named(qgis_app):
    """An engine too old to know an option stops before any event (argparse, exit code 2)."""
    script = [sys.executable, "-c", "import sys; sys.stderr.write('unrecognized: -x'); sys.exit(2)"]
    with pytest.raises(QgsProcessingException) as err:
        run_engine(script, Recorder())
    message = str(err.value)
    assert "stopped before saying which protocol it speaks (unrecognized: -x)" in message
    assert REPAIR in message


def test_warnings_from_region_blocks_are_shown_as_warnings(qgis_app):
    """A region forwards its blocks' warnings as log events of level WARNING."""
    feedback = Recorder()
    run_engine(
        _script(
            protocol.log("block r000_c001: no valid pixel", "WARNING"),
            protocol.log("the year differs", "WARNING", option="--year"),
            protocol.done({}, {}),
        ),
        feedback,
    )
    assert feedback.warnings == [
        "block r000_c001: no valid pixel",
        "the year differs [Year of the Sentinel-2 series (YEAR)]",
    ]


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
            HELLO,
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


def test_errors_use_the_algorithms_words(qgis_app):
    script = _script(
        protocol.error(
            "invalid_input", "InvalidInput", "choose one with --layer", {"option": "--layer"}
        ),
        exit_code=1,
    )
    with pytest.raises(QgsProcessingException, match=r"^choose one with Zones \(ZONES\)$"):
        run_engine(script, Recorder(), words={"--layer": "Zones (ZONES)"})


STUBBORN = """
import json, os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # an engine that does not stop in time
folder = sys.argv[1]
for name in ("out.tif", ".out.tif.partial-1", ".out.qml.partial-1", ".out.tif.lock"):
    open(os.path.join(folder, name), "w").close()
print(sys.argv[2], flush=True)
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
    an engine that ignores SIGTERM is killed, its output goes, and the engine is asked to
    remove the hidden working files (the plugin does not know their names)."""
    (tmp_path / ".outside.tif.lock").write_text("")  # another destination's lock: not ours
    feedback = CancelAtStart()
    engine = [os.environ.get("FLAIR_ENGINE_PYTHON", sys.executable), "-m", "engine"]
    with pytest.raises(QgsProcessingException) as err:
        run_engine(
            [sys.executable, "-c", STUBBORN, str(tmp_path), json.dumps(HELLO)],
            feedback,
            cleanup_paths=[tmp_path / "out.tif"],
            engine=engine,
        )
    assert type(err.value) is QgsProcessingException
    assert str(err.value) == "FLAIR run cancelled; no output was left behind."
    assert any("did not stop" in w for w in feedback.warnings)
    assert any(
        c.endswith(f"engine cleanup {tmp_path / 'out.tif'} --progress json")
        for c in feedback.commands
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [".outside.tif.lock"]


def test_what_the_engine_cannot_clean_is_named(qgis_app, tmp_path):
    """A stand-in engine whose `cleanup` reports a file it could not remove."""
    remaining = str(tmp_path / ".out.tif.partial-7")
    answer = protocol.done({}, {"remaining": [remaining]})
    fake = [sys.executable, "-c", f"print({json.dumps(json.dumps(answer))})", "--"]
    with pytest.raises(QgsProcessingException) as err:
        run_engine(
            [sys.executable, "-c", STUBBORN, str(tmp_path), json.dumps(HELLO)],
            CancelAtStart(),
            cleanup_paths=[tmp_path / "out.tif"],
            engine=fake,
        )
    assert str(err.value) == (
        f"FLAIR run cancelled, but these files could not be removed: {remaining}"
    )


class TextRecorder(Recorder):
    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def setProgressText(self, text):  # noqa: N802
        self.texts.append(text)


def test_time_remaining_for_runs_of_several_tiles_and_the_starting_text(qgis_app):
    """The engine's `eta_s` shows as time left while several tiles or blocks run (never for a
    single one); a run without a model says so before its first phase."""
    from flair_qgis.engine_progress import LOADING_TEXT, STARTING_TEXT, remaining_text

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


BROKEN_HEALTH = """
import json, sys
quick = "--quick" in sys.argv
missing = {} if quick else {"torch": "OSError: libtorch_cpu.so: cannot open shared object file"}
print(json.dumps({"version": "test", "packages": {}, "missing": missing, "ok": not missing}))
sys.exit(1 if missing else 0)
"""


def test_an_unforeseen_failure_is_diagnosed_by_the_full_check(qgis_app, tmp_path):
    """A broken wheel passes the quick probe and fails the run with an internal error: the
    plugin then asks the full check and says what to repair, not the failure it caused."""
    package = tmp_path / "engine"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "health.py").write_text(BROKEN_HEALTH)
    failure = {"event": "error", "code": "internal_error", "type": "RuntimeError"}
    failure |= {"message": "unexpected OSError: libtorch_cpu.so", "fields": {}}
    lines = [HELLO, failure]
    (package / "__main__.py").write_text(
        "import sys\n"
        + "".join(f"print({json.dumps(json.dumps(e))})\n" for e in lines)
        + "sys.exit(1)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    with pytest.raises(QgsProcessingException) as err:
        run_engine([sys.executable, "-m", "engine", "predict"], Recorder(), env=env)
    message = str(err.value)
    assert "incompletely installed: torch cannot be imported" in message
    assert "Install or repair the FLAIR engine" in message
    # a structured error (the engine foresaw it) is said as it is, without the full check
    (package / "health.py").write_text("raise SystemExit('the full check must not run')")
    foreseen = {"event": "error", "code": "invalid_input", "type": "InvalidInput"}
    foreseen |= {"message": "--tile-size 7: give a positive multiple of 32", "fields": {}}
    (package / "__main__.py").write_text(
        "import sys\n"
        + "".join(f"print({json.dumps(json.dumps(e))})\n" for e in (HELLO, foreseen))
        + "sys.exit(1)\n"
    )
    with pytest.raises(QgsProcessingException, match=r"these settings \(invalid input\)"):
        run_engine([sys.executable, "-m", "engine", "predict"], Recorder(), env=env)
