"""All or nothing at the destination, before any work: every destination is claimed (existing
files, folders) and every cheap option checked before the model loads or its weights download;
`--overwrite` replaces the whole set."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.cli import main
from tests.fixtures.generate import make_orthophoto
from tests.fixtures.predict_process import files

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
