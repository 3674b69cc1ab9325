"""U-T&T through the plugin: a generated orthophoto, U-T&T checkpoint and local Sentinel-2
catalogue (tests/fixtures/utt_scene.py, run by the engine venv), through `processing.run` and
through `qgis_process`, with the real engine.

The scene is 600 x 600 px; with 512 px tiles and MARGIN 64 it is 4 tiles, two of which have
Sentinel-2 dates and two run on the aerial branch alone (their super-patches leave the
catalogue's items). The orthophoto is tagged ACQUISITION_DATE=2021-06-12.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import processing
import pytest
from qgis.core import QgsProcessingException, QgsRasterLayer

from flair_qgis.engine_command import PredictRequest, acquisition_date, sentinel2_spec
from flair_qgis.engine_progress import PHASE_TEXTS

from .conftest import ENGINE_PYTHON, REPO, needs_engine, qgis_process
from .helpers import RecordingFeedback, read_codes

S2_TEXT = PHASE_TEXTS["sentinel2"]
INFERENCE_TEXT = PHASE_TEXTS["inference"]


# the mapping of parameters to engine options, without the engine -----------------------------
@pytest.mark.parametrize(
    ("kind", "location", "spec"),
    [
        ("none", "/data/s2", None),
        ("stac", "", "stac"),
        (
            "stac",
            " https://example.org/v1#sentinel-2-l2a ",
            "stac:https://example.org/v1#sentinel-2-l2a",
        ),
        ("stac", "stac:https://example.org/v1", "stac:https://example.org/v1"),
        ("stac", "planetary-computer", "planetary-computer"),
        ("catalog", "/data/s2/catalog.json", "catalog:/data/s2/catalog.json"),
        ("catalog", "/data/s2#sentinel-2-c1-l2a", "catalog:/data/s2#sentinel-2-c1-l2a"),
        ("catalog", "catalog:/data/s2", "catalog:/data/s2"),
        ("catalog", r"C:\data\s2\catalog.json", r"catalog:C:\data\s2\catalog.json"),
        ("flair", "/data/FLAIR2", "flair:/data/FLAIR2"),
    ],
)
def test_sentinel2_spec(kind, location, spec):
    assert sentinel2_spec(kind, location) == spec


@pytest.mark.parametrize(
    ("kind", "location", "message"),
    [
        ("catalog", "", "needs SENTINEL2_LOCATION"),
        ("flair", "  ", "needs SENTINEL2_LOCATION"),
        ("stac", "/data/s2/catalog.json", "http:// or https://"),
    ],
)
def test_sentinel2_spec_refuses(kind, location, message):
    with pytest.raises(ValueError, match=message):
        sentinel2_spec(kind, location)


def test_acquisition_date_form():
    assert acquisition_date(" 2021-06-20 ") == "2021-06-20"
    assert acquisition_date("") == ""
    for bad in ("2021-6-20", "20210620", "2021-02-30", "2021-W24-1", "20/06/2021"):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            acquisition_date(bad)


def test_utt_options_follow_the_sentinel2_source():
    base = {
        "input_path": "in.tif",
        "output_path": "out.tif",
        "model": "utt.ckpt",
        "bands": {"R": 1, "G": 2, "B": 3, "NIR": 4, "E": 5},
        "year": 2021,
        "acquisition_date": "2021-06-20",
        "strict": True,
    }
    args = PredictRequest(**base, sentinel2="catalog:/s2/catalog.json").arguments()
    joined = " ".join(args)
    assert (
        "--sentinel2 catalog:/s2/catalog.json --year 2021 --acquisition-date 2021-06-20 "
        "--strict" in joined
    )
    without = " ".join(PredictRequest(**base).arguments())
    assert not {"--sentinel2", "--year", "--acquisition-date", "--strict"} & set(without.split())


# end to end ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("utt_plugin_scene")
    proc = subprocess.run(
        [
            ENGINE_PYTHON,
            "-m",
            "tests.fixtures.utt_scene",
            str(root),
            "--tag-date",
            "2021-06-12 10:30:00",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    paths = {k: Path(v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
    return {**paths, "root": root}


@pytest.fixture(scope="module", autouse=True)
def s2_cache(tmp_path_factory):
    """Sentinel-2 cubes go to a throwaway cache (the engine and qgis_process inherit it)."""
    old = os.environ.get("FLAIR_SENTINEL2_CACHE")
    os.environ["FLAIR_SENTINEL2_CACHE"] = str(tmp_path_factory.mktemp("s2cache"))
    yield
    if old is None:
        os.environ.pop("FLAIR_SENTINEL2_CACHE", None)
    else:
        os.environ["FLAIR_SENTINEL2_CACHE"] = old


def _utt_parameters(scene: dict[str, Path], output: Path, **extra) -> dict:
    return {
        "INPUT": str(scene["ortho"]),
        "MODEL_FILE": str(scene["ckpt"]),
        "SENTINEL2_SOURCE": 2,
        "SENTINEL2_LOCATION": str(scene["catalog"]),
        "YEAR": 2021,
        "MARGIN": 64,
        "DEVICE": 1,
        "OUTPUT": str(output),
        **extra,
    }


def _assert_styled_utt_map(path: Path) -> set[int]:
    layer, rows = read_codes(path)
    values = {v for row in rows for v in row}
    assert values and values <= set(range(1, 13)), values  # U-T&T predicts codes 1..12
    styled = QgsRasterLayer(str(path), "utt")
    assert styled.renderer().type() == "paletted" and len(styled.renderer().classes()) == 19
    assert path.with_suffix(".qml").exists()
    return values


@pytest.fixture(scope="module")
def utt_run(qgis_app, scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("utt_run")
    feedback = RecordingFeedback()
    results = processing.run(
        "flair:landcover",
        _utt_parameters(
            scene, out / "utt.tif", ACQUISITION_DATE="2021-06-20", STATS=str(out / "stats.json")
        ),
        feedback=feedback,
    )
    return results, feedback, out


@needs_engine
def test_processing_run_utt_end_to_end(utt_run):
    results, feedback, out = utt_run
    assert Path(results["OUTPUT"]) == out / "utt.tif"
    _assert_styled_utt_map(out / "utt.tif")
    command = feedback.commands[-1]
    assert "--sentinel2 catalog:" in command and "catalog.json --year 2021" in command
    assert "--acquisition-date 2021-06-20" in command and "--strict" not in command
    assert any("metadata: acquired 2021-06-20" in i for i in feedback.infos)
    assert any("aerial branch alone" in w for w in feedback.warnings)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["sentinel2"]["tiles"] == 4 and stats["sentinel2"]["tiles_without_sentinel2"] == 2


@needs_engine
def test_sentinel2_phase_shows_before_inference(utt_run):
    _, feedback, _ = utt_run
    texts = feedback.texts
    assert S2_TEXT in texts and INFERENCE_TEXT in texts
    assert texts.index(S2_TEXT) < texts.index(INFERENCE_TEXT)
    s2_at = feedback.timeline.index(("text", S2_TEXT))
    inference_at = feedback.timeline.index(("text", INFERENCE_TEXT))
    during_s2 = [v for kind, v in feedback.timeline[s2_at:inference_at] if kind == "progress"]
    during_inference = [v for kind, v in feedback.timeline[inference_at:] if kind == "progress"]
    assert during_s2 and all(0.0 <= v <= 30.0 for v in during_s2) and during_s2[-1] == 30.0
    assert during_inference[0] == 30.0 and 92.0 in during_inference
    assert feedback.progress == sorted(feedback.progress) and feedback.progress[-1] == 100.0


@needs_engine
def test_strict_sentinel2_fails_on_a_tile_without_dates(qgis_app, scene, tmp_path):
    feedback = RecordingFeedback()
    output = tmp_path / "strict.tif"
    with pytest.raises(QgsProcessingException, match="STRICT_SENTINEL2"):
        processing.run(
            "flair:landcover",
            _utt_parameters(scene, output, ACQUISITION_DATE="2021-06-20", STRICT_SENTINEL2=True),
            feedback=feedback,
        )
    assert "--strict" in feedback.commands[-1]
    assert not output.exists()


@needs_engine
def test_bad_acquisition_date_stops_before_the_engine(qgis_app, scene, tmp_path):
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException, match="ACQUISITION_DATE '20/06/2021'"):
        processing.run(
            "flair:landcover",
            _utt_parameters(scene, tmp_path / "never.tif", ACQUISITION_DATE="20/06/2021"),
            feedback=feedback,
        )
    assert not feedback.commands


@needs_engine
def test_qgis_process_utt_end_to_end(installed_plugins, scene, tmp_path):
    """Headless, without ACQUISITION_DATE: the date comes from the orthophoto's tag."""
    output = tmp_path / "headless_utt.tif"
    proc = qgis_process(
        installed_plugins,
        "run",
        "flair:landcover",
        "--",
        f"INPUT={scene['ortho']}",
        f"MODEL_FILE={scene['ckpt']}",
        "SENTINEL2_SOURCE=2",
        f"SENTINEL2_LOCATION={scene['catalog']}",
        "YEAR=2021",
        "MARGIN=64",
        "DEVICE=1",
        f"OUTPUT={output}",
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert f"OUTPUT:\t{output}" in proc.stdout
    assert "--acquisition-date" not in log and "acquisition date 2021-06-12 read from" in log
    _assert_styled_utt_map(output)
