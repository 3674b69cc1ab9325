"""A run stopped at any phase leaves nothing: real signals (SIGINT / SIGTERM to a real
`python -m engine` process, sent when its JSON progress names the phase, Sentinel-2's loading
included); a killed run's leftovers are swept by the next, and a concurrent run to the same
destination is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import main
from tests.fixtures.predict_process import REPO, engine, files, make_ortho1024


@pytest.fixture(scope="module")
def ortho1024(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ortho1024(tmp_path_factory.mktemp("o1024"))


# --- a killed run's leftovers, a concurrent run ---------------------------------------------


def test_leftovers_of_a_killed_run_are_swept_and_nothing_else(
    tmp_path: Path, ortho5: Path, unet5: Path
) -> None:
    out = tmp_path / "m.tif"
    proc = engine(
        ortho5,
        out,
        "--model",
        unet5,
        "--tile-size",
        "256",
        "--margin",
        "32",
        "--polygons",
        tmp_path / "p.gpkg",
    )
    for line in proc.stdout:
        if json.loads(line).get("phase") == "inference":
            break
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait(timeout=30)
    left = [n for n in files(tmp_path)]
    assert any(".partial-" in n for n in left) and ".m.tif.lock" in left
    mine = ["notes.txt", ".m.tif.partial-notes", ".other.tif.partial-123.tif", "m.tif.bak"]
    for name in mine:
        (tmp_path / name).write_text("keep me")
    assert (
        main(
            [
                "predict",
                str(ortho5),
                str(out),
                "--model",
                str(unet5),
                "--polygons",
                str(tmp_path / "p.gpkg"),
                "--progress",
                "none",
            ]
        )
        == 0
    )
    assert files(tmp_path) == sorted(["m.qml", "m.tif", "m.tif.aux.xml", "p.gpkg", *mine])


def test_a_second_run_to_the_same_destination_is_refused(
    tmp_path: Path, ortho1024: Path, unet5: Path
) -> None:
    out = tmp_path / "m.tif"
    first = engine(ortho1024, out, "--model", unet5, "--tile-size", "512")
    for line in first.stdout:
        if json.loads(line).get("phase") == "inference":
            break
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "predict",
            str(ortho1024),
            str(out),
            "--model",
            str(unet5),
            "--overwrite",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 1
    assert "another run (process " in second.stderr and "is writing" in second.stderr
    first.stdout.read()
    assert first.wait(timeout=300) == 0
    assert files(tmp_path) == ["m.qml", "m.tif", "m.tif.aux.xml"]


# --- signals at every phase ------------------------------------------------------------------

PHASES = [
    ("loading", signal.SIGINT),  # before the first event: imports, model load
    ("inference", signal.SIGTERM),
    ("overviews", signal.SIGINT),
    ("polygons", signal.SIGTERM),
]


@pytest.mark.parametrize(("phase", "sig"), PHASES)
def test_a_signal_at_any_phase_stops_within_two_seconds_leaving_nothing(
    tmp_path: Path, ortho1024: Path, unet5: Path, phase: str, sig: signal.Signals
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = engine(
        ortho1024,
        out_dir / "m.tif",
        "--model",
        unet5,
        "--probabilities",
        out_dir / "p.tif",
        "--stats",
        out_dir / "s.json",
        "--polygons",
        out_dir / "m.gpkg",
    )
    if phase == "loading":
        proc.stdout.readline()  # the first log line: the run has started, the model is not loaded
    else:
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "start" and event["phase"] == phase:
                break
        else:
            pytest.fail(f"the run never reached {phase}: {proc.stderr.read()}")
    sent = time.monotonic()
    proc.send_signal(sig)
    rest = proc.stdout.read()
    code = proc.wait(timeout=30)
    assert time.monotonic() - sent < 2.0
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig]
    assert json.loads(rest.splitlines()[-1])["event"] == "error"
    assert files(out_dir) == []


def test_a_second_signal_does_not_lie(tmp_path: Path, ortho1024: Path, unet5: Path) -> None:
    proc = engine(
        ortho1024, tmp_path / "m.tif", "--model", unet5, "--polygons", tmp_path / "m.gpkg"
    )
    for line in proc.stdout:
        if json.loads(line).get("phase") == "inference":
            break
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    last = json.loads(proc.stdout.read().splitlines()[-1])
    assert proc.wait(timeout=30) == 130
    assert last["event"] == "error" and "no output was left behind" in last["message"]
    assert files(tmp_path) == []


def test_a_signal_while_sentinel2_loads_stops_within_two_seconds(tmp_path: Path) -> None:
    from tests.fixtures.utt_scene import make_scene

    scene = make_scene(tmp_path / "scene")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "FLAIR_SENTINEL2_CACHE": str(tmp_path / "cache")}
    proc = engine(
        scene["ortho"],
        out_dir / "m.tif",
        "--model",
        scene["ckpt"],
        "--sentinel2",
        f"catalog:{scene['catalog']}",
        "--year",
        "2021",
        "--acquisition-date",
        "2021-06-12",
        "--margin",
        "64",
        env=env,
    )
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "start" and event["phase"] == "sentinel2":
            break
    else:
        pytest.fail(f"the run never loaded Sentinel-2: {proc.stderr.read()}")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.stdout.read()
    assert proc.wait(timeout=30) == 143
    assert time.monotonic() - sent < 2.0
    assert files(out_dir) == []
