"""The command line: one-line errors for bad input, JSON progress, signals, no leftovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from engine.cli import main
from tests.fixtures.generate import make_orthophoto

REPO = Path(__file__).resolve().parents[2]


def predict(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str]:
    code = main(["predict", *(str(a) for a in args), "--progress", "none"])
    return code, capsys.readouterr().err


@pytest.fixture()
def corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"PK\x03\x04 truncated zip")
    return path


@pytest.fixture()
def empty_mask(tmp_path: Path, ortho5: Path) -> Path:
    frame = gpd.GeoDataFrame({"id": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:2154")
    frame.iloc[0:0].to_file(tmp_path / "empty.gpkg")
    return tmp_path / "empty.gpkg"


def test_bad_inputs_each_give_one_clear_line(
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
    ortho5: Path,
    unet5: Path,
    unet3: Path,
    corrupt: Path,
    empty_mask: Path,
) -> None:
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    rgb = make_orthophoto(tmp_path / "rgb.tif", 64, 64, 3)
    out = tmp_path / "out.tif"
    readonly = Path("/proc/sys")
    cases = [
        (
            (tmp_path / "missing.tif", out, "--model", unet5),
            "input raster .*missing.tif does not exist",
        ),
        ((text, out, "--model", unet5), "is not a raster GDAL can read"),
        ((rgb, out, "--model", unet5), r"lacks NIR \(near infrared\), E \(elevation\)"),
        (
            (ortho5, out, "--model", unet5, "--bands", "1,2,9,4,5"),
            "band 9 for blue is out of range; the raster has 5",
        ),
        (
            (ortho5, out, "--model", unet5, "--extent", "0,0,10,10"),
            "does not overlap the input raster",
        ),
        ((ortho5, out, "--model", unet5, "--mask", empty_mask), "holds no polygons"),
        (
            (ortho5, out, "--model", "flair-nope"),
            "unknown model 'flair-nope'; known models: flair-inc-rgbie-15cl",
        ),
        ((ortho5, out, "--model", corrupt), "not a readable torch checkpoint"),
        (
            (ortho5, out, "--model", unet3, "--channels", "R,G,B,NIR,E"),
            "takes 3 input channels but the card lists 5",
        ),
        (
            (ortho5, tmp_path / "nowhere" / "out.tif", "--model", unet5),
            "output folder .*nowhere does not exist",
        ),
        ((ortho5, out, "--model", unet5, "--tile-size", "500"), "multiple of 32"),
        ((ortho5, out, "--model", unet5, "--device", "cuda"), "torch sees no CUDA device"),
        (
            (ortho5, out, "--model", unet5, "--stats", tmp_path / "nowhere" / "s.json"),
            "output folder .*nowhere does not exist",
        ),
        (
            (ortho5, out, "--model", unet5, "--polygons", tmp_path / "p.shp"),
            r"--polygons output must be a \.gpkg or",
        ),
        (
            (ortho5, out, "--model", unet5, "--stats", tmp_path / "s.txt"),
            r"--stats output must be a \.json or \.csv file",
        ),
    ]
    if not os.access(readonly, os.W_OK):
        cases.append(((ortho5, readonly / "out.tif", "--model", unet5), "is not writable"))
    for args, pattern in cases:
        code, err = predict(capsys, *args)
        assert code == 1, args
        lines = [line for line in err.splitlines() if line.startswith("flair-landcover: error")]
        assert len(lines) == 1, err
        import re

        assert re.search(pattern, lines[0]), (pattern, lines[0])
        assert not out.exists()


def test_existing_output_needs_overwrite(
    capsys: pytest.CaptureFixture, tmp_path: Path, unet3: Path
) -> None:
    rgb = make_orthophoto(tmp_path / "rgb.tif", 64, 64, 3)
    out = tmp_path / "out.tif"
    out.write_bytes(b"precious")
    code, err = predict(capsys, rgb, out, "--model", unet3)
    assert (
        code == 1 and "already exists; add --overwrite" in err and out.read_bytes() == b"precious"
    )
    assert predict(capsys, rgb, out, "--model", unet3, "--overwrite")[0] == 0
    assert out.read_bytes()[:2] in (b"II", b"MM")


def test_json_progress_protocol(
    capsys: pytest.CaptureFixture, tmp_path: Path, ortho5: Path, unet5: Path
) -> None:
    code = main(
        [
            "predict",
            str(ortho5),
            str(tmp_path / "m.tif"),
            "--model",
            str(unet5),
            "--progress",
            "json",
            "--tile-size",
            "512",
            "--stats",
            str(tmp_path / "s.json"),
        ]
    )
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "done" and "log" in kinds
    start = next(e for e in events if e["event"] == "start" and e["phase"] == "inference")
    assert (
        start["total"] == 9
        and start["unit"] == "tiles"
        and start["area_km2"] == pytest.approx(0.0168)
    )
    progress = [e for e in events if e["event"] == "progress" and e["phase"] == "inference"]
    assert [p["done"] for p in progress] == list(range(1, 10)) and progress[-1]["fraction"] == 1.0
    assert events[-1]["outputs"]["output"] == str(tmp_path / "m.tif")
    assert events[-1]["stats"]["mapped_area_m2"] == pytest.approx(700 * 600 * 0.04)
    assert any("device cpu" in e.get("message", "") for e in events)


def test_json_error_event(capsys: pytest.CaptureFixture, tmp_path: Path, unet5: Path) -> None:
    code = main(
        [
            "predict",
            str(tmp_path / "none.tif"),
            str(tmp_path / "m.tif"),
            "--model",
            str(unet5),
            "--progress",
            "json",
        ]
    )
    assert code == 1
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (
        last["event"] == "error"
        and last["type"] == "InputNotFound"
        and "does not exist" in last["message"]
    )


def test_sigterm_mid_run_leaves_nothing(tmp_path: Path, unet3: Path) -> None:
    ortho = make_orthophoto(tmp_path / "big.tif", 2048, 2048, 3, seed=9)
    out = tmp_path / "m.tif"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "predict",
            str(ortho),
            str(out),
            "--model",
            str(unet3),
            "--tile-size",
            "256",
            "--margin",
            "32",
            "--progress",
            "json",
            "--confidence",
            str(tmp_path / "c.tif"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "progress" and event["phase"] == "inference" and event["done"] >= 2:
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 143
    assert json.loads(rest.splitlines()[-1])["event"] == "error"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif"]


def test_models_listing(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["default"] == "flair-inc-rgbie-15cl"
    assert {m["name"] for m in listing["models"]} >= {"flair-inc-rgb-15cl", "flair-inc-rgbie-12cl"}
    assert not any(m["cached"] for m in listing["models"])
    by_name = {m["name"]: m for m in listing["models"]}
    assert by_name["flair-inc-rgb-12cl"]["active_codes"] == list(range(1, 13))
    assert by_name["flair-inc-rgbie-15cl"]["active_codes"] == [*range(1, 15), 18]
    assert main(["models"]) == 0
    listing_text = capsys.readouterr().out
    assert "flair-inc-rgbi-15cl" in listing_text and "12 classes" in listing_text
    assert "15 classes" in listing_text


def test_python_m_engine_is_the_same_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine", "--version"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("flair-landcover ")
