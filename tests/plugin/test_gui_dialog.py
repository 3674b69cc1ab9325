"""The algorithm dialog as a user drives it, in a real QGIS desktop session under Xvfb.

gui_session.py runs in its own process on a virtual X display: the plugin's menu entries and
toolbar button, the first-use message bar, a run of `flair:landcover` cancelled from the
dialog (no traceback in the log, nothing left at the destination), a run of a registry model
whose weights are nowhere, offline (the error as the dialog shows it, and how soon after Run),
and a run to the end whose result loads named and styled. It saves the screenshots of docs/images when
FLAIR_UPDATE_DOCS_IMAGES=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import pytest

from .conftest import ENGINE_PYTHON, REPO, generate, needs_engine
from .strict_api import strict_api_requested

XVFB_RUN = shutil.which("xvfb-run")
if XVFB_RUN is None:  # CI installs xvfb (scripts/install_system_deps.sh): say it loudly here
    warnings.warn("xvfb-run not found: the GUI dialog test is SKIPPED; install xvfb", stacklevel=1)
pytestmark = [
    needs_engine,
    pytest.mark.skipif(
        XVFB_RUN is None, reason="XVFB NOT INSTALLED: the dialog test cannot run (apt install xvfb)"
    ),
]


@pytest.fixture(scope="module")
def session(qgis_app, raster5, checkpoint5, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("gui")
    big = work / "big.tif"
    generate("raster", str(big), "--width", "1024", "--height", "1024", "--bands", "5")
    out = work / "out"
    out.mkdir()
    images = REPO / "docs" / "images" if os.environ.get("FLAIR_UPDATE_DOCS_IMAGES") else work
    spec = {
        "big": str(big),
        "small": str(raster5),
        "checkpoint": str(checkpoint5),
        "out_dir": str(out),
        "images": str(images),
    }
    (work / "spec.json").write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(QT_QPA_PLATFORM="xcb", FLAIR_ENGINE_PYTHON=ENGINE_PYTHON)
    proc = subprocess.run(
        [
            XVFB_RUN,
            "-a",
            "-s",
            "-screen 0 1280x1024x24",
            sys.executable,
            str(REPO / "tests" / "plugin" / "gui_session.py"),
            str(work / "spec.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, (
        f"no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    (work / "report.json").write_text(lines[-1])  # kept for a look after a failure
    report = json.loads(lines[-1])
    report["images"] = images
    return report


def test_session_ran_in_strict_api_mode_when_asked(session):
    """Under FLAIR_QGIS_STRICT_API the desktop session ran without QGIS's enum aliases too."""
    assert (session["strict_api_removed"] > 100) == strict_api_requested()


def test_menu_and_toolbar_open_the_algorithms(session):
    entries = session["menu"]["&FLAIR land cover"]
    assert entries[0].startswith("FLAIR land-cover segmentation")
    assert any(e.startswith("Install or repair the FLAIR engine") for e in entries)
    assert any(e.startswith("FLAIR land cover for a region") for e in entries)
    assert session["toolbar"] == [entries[0]]


def test_first_use_without_engine_offers_the_installer(session):
    first = session["first_use"]
    assert "not installed" in first["message_bar"]
    assert first["installer_opened"] == "flair:install_engine"


def test_settings_page_under_processing_providers(session):
    rows = session["options"]["flair"]
    assert "FLAIR" in session["options"]["groups"]
    assert any(r.startswith("Engine Python") for r in rows)
    assert any(r.startswith("Folder of downloaded model weights") for r in rows)
    assert any(r.startswith("Default device") for r in rows)


def test_cancel_from_the_dialog_is_clean(session):
    cancel = session["cancel"]
    assert cancel["started"] and cancel["finished"]
    log = cancel["log"]
    assert "FLAIR run cancelled" in log
    assert "Traceback" not in log and "EngineCancelled" not in log
    assert cancel["left"] == []  # no output, no hidden .partial or .lock file


def test_run_to_the_end_loads_the_styled_named_result(session):
    run = session["run"]
    assert run["done"], run["log"][-2000:]
    assert "Traceback" not in run["log"] and "ResourceWarning" not in run["log"]
    assert "ortho5 - unet5" in run["layers"]  # "<input> - <model>", not "Land cover"
    assert "ortho5 - unet5 - confidence" in run["layers"]
    assert run["renderer"] == "paletted" and len(run["legend"]) == 19
    assert run["confidence_legend"] == ["0 %", "25 %", "50 %", "75 %", "100 %"]
    assert (session["images"] / "plugin_dialog.png").stat().st_size > 10_000
    assert (session["images"] / "plugin_result_legend.png").stat().st_size > 10_000


def test_missing_weights_message_is_short_plain_and_quick(session):
    """A registry model with no weights anywhere, offline: within 5 s of Run the dialog says
    in its own words what is missing (the file and its size) and what to do, in at most
    3 lines, without command-line options or environment variable names."""
    missing = session["missing_weights"]
    assert missing["shown"] and missing["finished"], missing["log"][-2000:]
    message = missing["message"]
    lines = message.splitlines()
    assert 1 <= len(lines) <= 3, message
    first = lines[0]
    assert first.startswith(f"The weights of model {missing['model']} are not on this machine")
    assert re.search(r"\S+\.(safetensors|pth|ckpt|pt) \(\d+ [kMG]B\)", first), first
    assert "Model checkpoint" in first and "weights folder" in first, first
    assert "--" not in message, message
    for name in ("FLAIR_WEIGHTS_DIR", "HF_HOME", "HF_HUB_OFFLINE", "HF_HUB_CACHE"):
        assert name not in message, message
    # the only other red text is QGIS's own "Execution failed after N seconds"
    assert all(e.startswith("Execution failed") for e in missing["errors"][1:]), missing["errors"]
    assert "Traceback" not in missing["log"]
    assert missing["left"] == []  # the run stopped before writing anything
    # the requirement (measured 0.9 to 1.6 s on a loaded 2-core machine: the engine
    # stops before torch is imported)
    assert missing["elapsed_s"] < 5.0, missing["elapsed_s"]


def test_missing_weights_on_a_sessions_first_run_says_it_checks_the_engine(session):
    """A session's first run checks the engine first (a probe that finds its packages without
    importing them: 2.0 s from Run to the message here, 9.7 s when it imported torch); it says
    so, then gives the same message, within the same 5 s."""
    first_run = session["missing_weights"]["first_run"]
    assert first_run["shown"] and first_run["finished"], first_run["log"][-2000:]
    assert "Checking the FLAIR engine" in first_run["log"]
    assert first_run["message"] == session["missing_weights"]["message"]
    assert first_run["left"] == []
    assert first_run["elapsed_s"] < 5.0, first_run["elapsed_s"]
