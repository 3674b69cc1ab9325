"""All or nothing at the destination: claims before work, one commit, signals at any phase,
concurrent runs, sweeping a killed run's leftovers, byte-identical compact files, full statistics.

Signals are real (SIGINT / SIGTERM to a real `python -m engine` process, sent when its JSON
progress names the phase); the full disk is a real 1 MB-scale tmpfs mounted by the test (root
only, skipped elsewhere).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.shutil
from shapely.geometry import box

from engine.cli import main
from tests.fixtures.generate import make_orthophoto

REPO = Path(__file__).resolve().parents[2]


def engine(*args: object, **popen: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "predict", *(str(a) for a in args), "--progress", "json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def ortho1024(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_orthophoto(tmp_path_factory.mktemp("o1024") / "ortho.tif", 1024, 1024, 5, seed=21)


# --- claims before any work -------------------------------------------------------------------


@pytest.mark.parametrize(
    "existing",
    ["out.qml", "out.tif.aux.xml", "areas.csv", "poly.gpkg", "conf.tif", "conf.tif.aux.xml"],
)
def test_every_existing_destination_is_refused_before_work(
    capsys: pytest.CaptureFixture, tmp_path: Path, ortho5: Path, unet5: Path, existing: str
) -> None:
    (tmp_path / existing).write_text("the user's own file")
    t0 = time.monotonic()
    code = main(
        [
            "predict",
            str(ortho5),
            str(tmp_path / "out.tif"),
            "--model",
            str(unet5),
            "--stats",
            str(tmp_path / "areas.csv"),
            "--polygons",
            str(tmp_path / "poly.gpkg"),
            "--confidence",
            str(tmp_path / "conf.tif"),
            "--progress",
            "none",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert f"{existing} already exists; add --overwrite" in err.strip().splitlines()[-1]
    assert time.monotonic() - t0 < 3  # refused before the model loads
    assert files(tmp_path) == [existing]
    assert (tmp_path / existing).read_text() == "the user's own file"


def test_a_folder_as_destination_is_refused(
    capsys: pytest.CaptureFixture, tmp_path: Path, ortho5: Path, unet5: Path
) -> None:
    (tmp_path / "out.tif").mkdir()
    assert (
        main(
            [
                "predict",
                str(ortho5),
                str(tmp_path / "out.tif"),
                "--model",
                str(unet5),
                "--progress",
                "none",
            ]
        )
        == 1
    )
    assert "out.tif is a folder" in capsys.readouterr().err
    (tmp_path / "out.tif").rmdir()
    (tmp_path / "s.json").mkdir()
    assert (
        main(
            [
                "predict",
                str(ortho5),
                str(tmp_path / "out.tif"),
                "--model",
                str(unet5),
                "--stats",
                str(tmp_path / "s.json"),
                "--overwrite",
                "--progress",
                "none",
            ]
        )
        == 1
    )
    assert "s.json is a folder" in capsys.readouterr().err
    assert files(tmp_path) == ["s.json"]


def test_overwrite_replaces_the_whole_set(tmp_path: Path, ortho5: Path, unet5: Path) -> None:
    args = [
        "predict",
        str(ortho5),
        str(tmp_path / "m.tif"),
        "--model",
        str(unet5),
        "--stats",
        str(tmp_path / "s.json"),
        "--confidence",
        str(tmp_path / "c.tif"),
        "--progress",
        "none",
    ]
    (tmp_path / "c.tif.aux.xml").write_text("<PAMDataset/>")  # describes an older raster
    assert main(args) == 1
    assert main([*args, "--overwrite"]) == 0
    assert files(tmp_path) == ["c.tif", "m.qml", "m.tif", "m.tif.aux.xml", "s.json"]
    assert main([*args, "--overwrite"]) == 0
    assert files(tmp_path) == ["c.tif", "m.qml", "m.tif", "m.tif.aux.xml", "s.json"]


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


# --- a full disk at the last phase --------------------------------------------------------------


@pytest.fixture()
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True, check=False)


def _mount_tmpfs(mount: Path, size_kb: int) -> None:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def test_a_full_disk_while_writing_polygons_leaves_nothing(
    capsys: pytest.CaptureFixture, tmp_path: Path, tiny_disk: Path, ortho5: Path, unet5: Path
) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    args = ["--model", str(unet5), "--progress", "none"]
    assert (
        main(
            [
                "predict",
                str(ortho5),
                str(probe / "m.tif"),
                "--stats",
                str(probe / "s.json"),
                "--polygons",
                str(probe / "m.gpkg"),
                *args,
            ]
        )
        == 0
    )
    sizes = {p.name: p.stat().st_size for p in probe.iterdir()}
    raster_kb = (
        3 * sizes["m.tif"] + sizes["m.qml"] + sizes["m.tif.aux.xml"] + sizes["s.json"]
    ) // 1024
    assert sizes["m.gpkg"] > 4 * (raster_kb + 64) * 1024, sizes  # the polygons cannot fit
    _mount_tmpfs(tiny_disk, raster_kb + 64)
    capsys.readouterr()
    code = main(
        [
            "predict",
            str(ortho5),
            str(tiny_disk / "m.tif"),
            "--stats",
            str(tiny_disk / "s.json"),
            "--polygons",
            str(tiny_disk / "m.gpkg"),
            *args,
        ]
    )
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert "disk holding" in last and "is full" in last and "report it" not in last
    assert files(tiny_disk) == []


# --- determinism, size, statistics -------------------------------------------------------------


def test_same_run_gives_byte_identical_compact_files(tmp_path: Path, unet5: Path) -> None:
    ortho = make_orthophoto(tmp_path / "o.tif", 1500, 1300, 5, seed=31)
    digests = set()
    for i in range(3):
        out = tmp_path / f"m{i}.tif"
        assert (
            main(
                [
                    "predict",
                    str(ortho),
                    str(out),
                    "--model",
                    str(unet5),
                    "--tile-size",
                    "512",
                    "--confidence",
                    str(tmp_path / f"c{i}.tif"),
                    "--progress",
                    "none",
                ]
            )
            == 0
        )
        digests.add((out.read_bytes(), (tmp_path / f"c{i}.tif").read_bytes()))
    assert len(digests) == 1
    with rasterio.open(tmp_path / "m0.tif") as ds:
        assert len(ds.block_shapes) == 1 and ds.block_shapes[0] == (512, 512)
        assert ds.overviews(1) == [2, 4]
    # gdal_translate -co TILED=YES -co COMPRESS=DEFLATE of the same pixels, overviews copied
    reference = tmp_path / "translated.tif"
    rasterio.shutil.copy(
        tmp_path / "m0.tif",
        reference,
        driver="GTiff",
        TILED="YES",
        COMPRESS="DEFLATE",
        BLOCKXSIZE=512,
        BLOCKYSIZE=512,
        COPY_SRC_OVERVIEWS="YES",
    )
    assert (tmp_path / "m0.tif").stat().st_size <= reference.stat().st_size * 1.05 + 4096


def test_statistics_count_every_pixel_of_a_masked_area(tmp_path: Path, unet5: Path) -> None:
    ortho = make_orthophoto(tmp_path / "o.tif", 1024, 1024, 5, seed=5)
    x0, y0 = 652000.0, 6862000.0 - 1024 * 0.2
    mask = gpd.GeoDataFrame(
        geometry=[
            box(x0 + 10, y0 + 10, x0 + 40, y0 + 40),
            box(x0 + 160, y0 + 160, x0 + 200, y0 + 200),
        ],
        crs="EPSG:2154",
    )
    mask.to_file(tmp_path / "mask.gpkg")
    assert (
        main(
            [
                "predict",
                str(ortho),
                str(tmp_path / "m.tif"),
                "--model",
                str(unet5),
                "--tile-size",
                "256",
                "--margin",
                "32",
                "--mask",
                str(tmp_path / "mask.gpkg"),
                "--stats",
                str(tmp_path / "s.json"),
                "--progress",
                "none",
            ]
        )
        == 0
    )
    stats = json.loads((tmp_path / "s.json").read_text())
    with rasterio.open(tmp_path / "m.tif") as ds:
        codes = ds.read(1)
    assert stats["nodata_pixels"] == int((codes == 0).sum())
    assert sum(row["pixels"] for row in stats["classes"]) == int((codes > 0).sum())
    assert stats["nodata_pixels"] + sum(r["pixels"] for r in stats["classes"]) == codes.size


def test_an_area_without_a_valid_pixel_warns_and_says_so(tmp_path: Path, unet5: Path) -> None:
    ortho = make_orthophoto(tmp_path / "o.tif", 300, 300, 5, seed=6, nodata=0)
    with rasterio.open(ortho, "r+") as ds:
        ds.write(np.zeros((5, 300, 300), dtype=np.uint8))
    proc = engine(ortho, tmp_path / "m.tif", "--model", unet5, "--stats", tmp_path / "s.json")
    out, _ = proc.communicate(timeout=120)
    events = [json.loads(line) for line in out.splitlines()]
    assert proc.returncode == 0
    assert any(
        e["event"] == "log" and e["level"] == "WARNING" and "no valid pixel" in e["message"]
        for e in events
    )
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["mapped_area_m2"] == 0 and stats["nodata_pixels"] == 300 * 300
    assert stats["warning"] == "no valid pixel in the area"
    assert os.path.exists(tmp_path / "m.tif")


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


# --- cheap checks come before the model (a registry model whose weights are absent) ---------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--extent", "652000,6861900,652050,6862000,EPSG:99999"), "is not a CRS"),
        (("--device", "cuda:3"), "torch sees no CUDA device"),
        (("--bands", "1,2,3,4,5,1"), "band"),
        (("--precision", "fp8"), "invalid choice"),
    ],
)
def test_cheap_checks_come_before_the_weights(
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    ortho5: Path,
    extra: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("FLAIR_WEIGHTS_DIR", raising=False)
    try:
        code = main(
            [
                "predict",
                str(ortho5),
                str(tmp_path / "m.tif"),
                "--model",
                "flair-inc-rgbie-15cl",
                *extra,
                "--progress",
                "none",
            ]
        )
    except SystemExit as exc:  # argparse's own refusal (exit 2)
        code = exc.code
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert message in err
    assert "weights" not in err.strip().splitlines()[-1]
    assert [n for n in files(tmp_path) if n != "empty-cache"] == []


def test_an_rgb_raster_with_a_five_band_model_is_refused_before_any_download(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # would fail slowly if tried
    monkeypatch.delenv("FLAIR_WEIGHTS_DIR", raising=False)
    rgb = make_orthophoto(tmp_path / "rgb.tif", 64, 64, 3)
    t0 = time.monotonic()
    code = main(
        [
            "predict",
            str(rgb),
            str(tmp_path / "m.tif"),
            "--model",
            "flair-inc-rgbie-15cl",
            "--download",
            "--progress",
            "none",
        ]
    )
    assert code == 1
    assert "lacks NIR" in capsys.readouterr().err
    assert time.monotonic() - t0 < 5
