"""Hostile files: GDAL paths that lead nowhere, names that are not UTF-8, truncated rasters, a
full disk, and checkpoints the safe loader refuses (never run, never "download it again").
One clear last line each, nothing left at the destination; GDAL paths that do lead somewhere
reach GDAL untouched."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from tests.fixtures.generate import make_orthophoto
from tests.fixtures.hostile import (
    Case,
    check_case,
    last_line,
    make_checkpoints,
    make_scene,
    non_utf8,
    read_codes,
    run,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scene(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoints(tmp_path_factory.mktemp("hostile_ckpt"))


CASES = [
    # GDAL paths pass through untouched (the `//` stays), non-UTF-8 names are refused
    Case(
        "vsizip-missing-member",
        lambda s, c, o, u3, u5: [f"/vsizip/{s}/bundle.zip/nope.tif", o / "m.tif", "--model", u3],
        r"/vsizip//.*/bundle.zip/nope.tif is not a raster GDAL",
    ),
    Case(
        "vsicurl-unreachable",
        lambda s, c, o, u3, u5: ["/vsicurl/http://127.0.0.1:9/o.tif", o / "m.tif", "--model", u3],
        r"/vsicurl/http://127.0.0.1:9/o.tif is not a raster GDAL",
    ),
    Case(
        "https-unreachable",
        lambda s, c, o, u3, u5: ["https://127.0.0.1:9/o.tif", o / "m.tif", "--model", u3],
        r"https://127.0.0.1:9/o.tif is not a raster GDAL can read",
    ),
    Case(
        "input-name-not-utf8",
        lambda s, c, o, u3, u5: [non_utf8(s, b"ortho\xff.tif"), o / "m.tif", "--model", u3],
        r"input raster .*ortho\\xff.tif: the name is not valid UTF-8",
    ),
    Case(
        "output-name-not-utf8",
        lambda s, c, o, u3, u5: [s / "rgb.tif", non_utf8(o, b"carte\xe9.tif"), "--model", u3],
        r"output .*carte\\xe9.tif: .*not valid UTF-8",
    ),
    # I/O failures name their file and cause (part 6)
    Case(
        "truncated-geotiff",
        lambda s, c, o, u3, u5: [s / "truncated.tif", o / "m.tif", "--model", u3],
        r"truncated.tif is truncated or corrupt \(GDAL: .*\)",
    ),
    Case(
        "truncated-elevation",
        lambda s, c, o, u3, u5: [
            s / "rgbi.tif",
            o / "m.tif",
            "--model",
            u5,
            "--elevation",
            s / "dsm_truncated.tif",
        ],
        r"dsm_truncated.tif is (truncated or corrupt"
        r" \(GDAL: .*\)|not a raster GDAL can read)",
    ),
    # checkpoints the safe loader refuses: never run, never "download it again"
    Case(
        "hostile-torch-save",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            c / "hostile.pth",
            "--channels",
            "R,G,B",
        ],
        r"hostile.pth holds objects other than tensors \(.*open\) and was refused for safety",
    ),
    Case(
        "hostile-plain-pickle",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            c / "hostile.pkl",
            "--channels",
            "R,G,B",
        ],
        r"(holds objects other than tensors .* refused for safety|nothing in it was run)",
    ),
    Case(
        "lightning-hparams-object",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            c / "hparams.ckpt",
            "--channels",
            "R,G,B",
        ],
        r"objects other than tensors \(argparse.Namespace\) and was refused for safety",
    ),
    Case(
        "random-bytes-checkpoint",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            c / "random.pth",
            "--channels",
            "R,G,B",
        ],
        r"not a readable torch checkpoint",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_gives_one_clear_line_and_leaves_nothing(
    case: Case,
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
    scene: Path,
    checkpoints: Path,
    unet3: Path,
    unet5: Path,
) -> None:
    check_case(case, capsys, tmp_path, scene, checkpoints, unet3, unet5)


def test_truncated_geotiff_in_a_real_process_names_itself_without_gdal_noise(
    tmp_path: Path, scene: Path, unet3: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine", "predict", str(scene / "truncated.tif"),
         str(tmp_path / "m.tif"), "--model", str(unet3), "--progress", "none"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert re.search(r"truncated.tif is truncated or corrupt \(GDAL: ", last_line(result.stderr))
    assert "GDAL signalled" not in result.stderr and "rasterio" not in result.stderr
    assert "report it" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB tmpfs, nearly full: a few tens of kilobytes are left."""
    disk = tmp_path / "tiny"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        with open(disk / "filler", "wb") as f:
            try:
                f.write(b"\0" * 1_000_000)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_full_disk_names_the_disk_and_leaves_nothing(
    capsys: pytest.CaptureFixture, tiny_disk: Path, tmp_path: Path, unet3: Path
) -> None:
    ortho = make_orthophoto(tmp_path / "o.tif", 256, 256, 3, seed=14)
    code, _, err = run(
        capsys,
        [ortho, tiny_disk / "m.tif", "--model", unet3, "--probabilities", tiny_disk / "p.tif",
         "--progress", "none"],
    )  # fmt: skip
    assert code == 1, err
    assert re.search(r"the disk holding .*tiny is full \([\d.]+ MB free\)", last_line(err)), err
    assert "report it" not in err
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]


def test_gdal_paths_reach_gdal_untouched(
    tmp_path: Path, scene: Path, unet3: Path, unet5: Path
) -> None:
    """/vsizip//abs/bundle.zip/...: input, elevation and mask read from inside a zip."""
    inside = f"/vsizip/{scene}/bundle.zip"
    assert inside.startswith("/vsizip//")
    assert main(["predict", f"{inside}/rgb.tif", str(tmp_path / "z.tif"), "--model", str(unet3),
                 "--progress", "none"]) == 0  # fmt: skip
    assert main(["predict", str(scene / "rgb.tif"), str(tmp_path / "p.tif"), "--model",
                 str(unet3), "--progress", "none"]) == 0  # fmt: skip
    assert np.array_equal(read_codes(tmp_path / "z.tif"), read_codes(tmp_path / "p.tif"))
    assert main(["predict", f"{inside}/rgbi.tif", str(tmp_path / "e.tif"), "--model", str(unet5),
                 "--elevation", f"{inside}/dsm.tif:1", "--mask", f"{inside}/inside.geojson",
                 "--progress", "none"]) == 0  # fmt: skip
    codes = read_codes(tmp_path / "e.tif")
    assert codes.shape == (44, 44) and (codes > 0).all()  # the mask's 2 m inset of 12.8 m
