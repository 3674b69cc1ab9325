"""Bad, hostile and unusual inputs through the CLI: one clear last line, never "report it",
nothing left at the destination; NaN and infinity never reach the model; GDAL paths work."""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
from shapely.geometry import box

from engine.cli import main
from tests.fixtures.generate import make_orthophoto

REPO = Path(__file__).resolve().parents[2]
ORTHO_WKT = "+proj=ortho +lat_0=-45 +lon_0=170 +datum=WGS84"  # France is on its far side


class Hostile:
    """Unpickling this would create a file: the loader must refuse it without running it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def run(capsys: pytest.CaptureFixture, args: list[object]) -> tuple[int, str, str]:
    code = main(["predict", *(a if isinstance(a, str) else str(a) for a in args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_codes(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small rasters and vectors shared by the cases (read only)."""
    root = tmp_path_factory.mktemp("hostile")
    rgb = make_orthophoto(root / "rgb.tif", 64, 64, 3, seed=11)
    rgbi = make_orthophoto(root / "rgbi.tif", 64, 64, 4, seed=12)
    with rasterio.open(rgbi) as ds:
        profile = ds.profile | {"count": 1}
        elevation = ds.read(4)
    with rasterio.open(root / "dsm.tif", "w", **(profile | {"photometric": "MINISBLACK"})) as ds:
        ds.write(elevation, 1)
    big = make_orthophoto(root / "big.tif", 256, 256, 3, seed=13)
    data = big.read_bytes()
    (root / "truncated.tif").write_bytes(data[: len(data) // 2])
    shutil.copy(root / "dsm.tif", root / "dsm_truncated.tif")
    dsm = (root / "dsm.tif").read_bytes()
    (root / "dsm_truncated.tif").write_bytes(dsm[: len(dsm) // 2])
    shutil.copy(rgb, _non_utf8(root, b"ortho\xff.tif"))  # a name whose bytes are not UTF-8
    (root / "notes.gpkg").write_text("not a vector file")
    with rasterio.open(rgb) as ds:
        left, bottom, right, top = ds.bounds
    far = box(170.0, 85.0, 179.0, 89.0)  # near the north pole: far from the raster
    gpd.GeoDataFrame({"id": [1]}, geometry=[far], crs="EPSG:4326").to_file(root / "far.gpkg")
    gpd.GeoDataFrame(
        {"id": [1]}, geometry=[box(left + 2, bottom + 2, right - 2, top - 2)], crs="EPSG:2154"
    ).to_file(root / "inside.geojson")
    with zipfile.ZipFile(root / "bundle.zip", "w") as bundle:
        for name in ("rgb.tif", "rgbi.tif", "dsm.tif", "inside.geojson"):
            bundle.write(root / name, name)
    return root


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoints the safe loader must refuse, and the marker their payload would create."""
    root = tmp_path_factory.mktemp("hostile_ckpt")
    marker = root / "pwned"
    torch.save({"w": torch.zeros(2), "payload": Hostile(marker)}, root / "hostile.pth")
    with open(root / "hostile.pkl", "wb") as f:
        pickle.dump({"payload": Hostile(marker)}, f, protocol=2)
    namespace = __import__("argparse").Namespace(lr=0.01)
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hparams": namespace}, root / "hparams.ckpt")
    (root / "random.pth").write_bytes(np.random.default_rng(0).bytes(512))
    return root


@dataclass(frozen=True)
class Case:
    """One command line: `args` gets (scene, checkpoints, out folder, unet3, unet5)."""

    name: str
    args: Callable[[Path, Path, Path, Path, Path], list[object]]
    pattern: str
    code: int = 1


def _non_utf8(folder: Path, name: bytes) -> str:
    return os.fsdecode(os.fsencode(folder) + b"/" + name)


CASES = [
    # values that are not numbers, coordinates that cannot be transformed (issue 8, part 3)
    Case(
        "extent-nan",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            u3,
            "--extent",
            "nan,0,1,1",
        ],
        r"--extent 'nan,0,1,1': the four bounds must be finite",
    ),
    Case(
        "extent-inf",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            u3,
            "--extent",
            "0,0,inf,1e300",
        ],
        r"must be finite numbers",
    ),
    Case(
        "extent-outside-ortho-domain",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            u3,
            "--extent",
            f"-1e7,-1e7,1e7,1e7,{ORTHO_WKT}",
        ],
        r"--extent .* cannot be transformed to the raster's CRS EPSG:2154 .*give the extent in",
    ),
    Case(
        "extent-far-in-web-mercator",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            u3,
            "--extent",
            "1e10,1e10,2e10,2e10,EPSG:3857",
        ],
        r"does not overlap the input raster, which covers [\d.,]+ in EPSG:3857",
    ),
    Case(
        "extent-negative-values-are-a-value",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            u3,
            "--extent",
            "-10,-10,-5,-5",
        ],
        r"--extent -10,-10,-5,-5 does not overlap the input raster",
    ),
    Case(
        "extent-unknown-crs",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            u3,
            "--extent",
            "0,0,1,1,EPSG:999999",
        ],
        r"'EPSG:999999' is not a CRS rasterio knows",
    ),
    Case(
        "extent-reversed",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            u3,
            "--extent",
            "10,10,0,0",
        ],
        r"xmin must be < xmax",
    ),
    Case(
        "mask-far-away",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            u3,
            "--mask",
            s / "far.gpkg",
        ],
        r"the mask .*far.gpkg does not overlap the input raster",
    ),
    Case(
        "mask-not-vector",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            u3,
            "--mask",
            s / "notes.gpkg",
        ],
        r"mask .*notes.gpkg is not a vector file OGR can read",
    ),
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
        lambda s, c, o, u3, u5: [_non_utf8(s, b"ortho\xff.tif"), o / "m.tif", "--model", u3],
        r"input raster .*ortho\\xff.tif: the name is not valid UTF-8",
    ),
    Case(
        "output-name-not-utf8",
        lambda s, c, o, u3, u5: [s / "rgb.tif", _non_utf8(o, b"carte\xe9.tif"), "--model", u3],
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
    # invalid values are refused, never silently replaced
    Case(
        "tile-size-0",
        lambda s, c, o, u3, u5: [s / "rgb.tif", o / "m.tif", "--model", u3, "--tile-size", "0"],
        r"--tile-size 0: give a positive multiple of 32",
    ),
    Case(
        "tile-size-negative",
        lambda s, c, o, u3, u5: [s / "rgb.tif", o / "m.tif", "--model", u3, "--tile-size", "-64"],
        r"--tile-size -64: give a positive multiple of 32",
    ),
    Case(
        "margin-negative",
        lambda s, c, o, u3, u5: [s / "rgb.tif", o / "m.tif", "--model", u3, "--margin", "-1"],
        r"--margin -1: give 0 or more pixels",
    ),
    Case(
        "margin-leaves-no-core",
        lambda s, c, o, u3, u5: [
            s / "rgb.tif",
            o / "m.tif",
            "--model",
            u3,
            "--tile-size",
            "128",
            "--margin",
            "64",
        ],
        r"--margin 64 leaves no core in 128 px tiles",
    ),
    Case(
        "bands-more-than-channels",
        lambda s, c, o, u3, u5: [s / "rgbi.tif", o / "m.tif", "--model", u3, "--bands", "1,2,3,4"],
        r"--bands '1,2,3,4' gives 4 band numbers but "
        r"model .* takes 3 from the orthophoto",
    ),
    Case(
        "bands-and-elevation-both-give-e",
        lambda s, c, o, u3, u5: [
            s / "rgbi.tif",
            o / "m.tif",
            "--model",
            u5,
            "--bands",
            "1,2,3,4,4",
            "--elevation",
            s / "dsm.tif",
        ],
        r"takes 4 from the orthophoto \(E comes from --elevation\)",
    ),
    Case(
        "batch-size-0",
        lambda s, c, o, u3, u5: [s / "rgb.tif", o / "m.tif", "--model", u3, "--batch-size", "0"],
        r"--batch-size 0: give at least 1",
    ),
    Case(
        "threads-0",
        lambda s, c, o, u3, u5: [s / "rgb.tif", o / "m.tif", "--model", u3, "--threads", "0"],
        r"--threads 0: give at least 1",
    ),
    Case(
        "input-max-nan",
        lambda s, c, o, u3, u5: [s / "rgb.tif", o / "m.tif", "--model", u3, "--input-max", "nan"],
        r"--input-max nan: give a positive number",
    ),
    Case(
        "input-max-inf",
        lambda s, c, o, u3, u5: [s / "rgb.tif", o / "m.tif", "--model", u3, "--input-max", "inf"],
        r"--input-max inf: give a positive number",
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
    out = tmp_path / "out"
    out.mkdir()
    args = case.args(scene, checkpoints, out, unet3, unet5)
    code, _, err = run(capsys, [*args, "--progress", "none"])
    line = last_line(err)
    assert code == case.code, err
    assert line.startswith("flair-landcover: error: "), err
    assert re.search(case.pattern, line), (case.pattern, line)
    assert "report it" not in err
    assert list(out.iterdir()) == []
    assert not (checkpoints / "pwned").exists()  # no hostile payload ever ran


def test_json_error_event_for_a_hostile_input(
    capsys: pytest.CaptureFixture, tmp_path: Path, scene: Path, unet3: Path
) -> None:
    code, out, _ = run(
        capsys,
        [scene / "truncated.tif", tmp_path / "m.tif", "--model", unet3, "--progress", "json"],
    )
    event = json.loads(last_line(out))
    assert code == 1 and event["event"] == "error" and event["type"] == "InvalidInput"
    assert "is truncated or corrupt" in event["message"]


SYNTAX_ERRORS = [
    (["predict", "--progress", "json"], r"the following arguments are required: input, output"),
    (["predict", "a.tif", "b.tif", "--tile-size", "big", "--progress=json"], r"invalid int value"),
    (["predict", "a.tif", "b.tif", "--progress", "json", "--no-such"], r"unrecognized arguments"),
    (["predict", "a.tif", "b.tif", "--prog", "json", "--extent"], r"expected one argument"),
    (["predikt", "--progress", "json"], r"invalid choice: 'predikt'"),
]


@pytest.mark.parametrize("argv,pattern", SYNTAX_ERRORS)
def test_syntax_errors_are_json_error_events_too(
    capsys: pytest.CaptureFixture, argv: list[str], pattern: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    captured = capsys.readouterr()
    assert stopped.value.code == 2
    event = json.loads(last_line(captured.out))
    assert event["event"] == "error" and event["type"] == "UsageError"
    assert re.search(pattern, event["message"]) and re.search(pattern, captured.err)


def test_syntax_error_without_json_prints_text_only(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["predict", "a.tif", "b.tif", "--tile-size", "big"])
    captured = capsys.readouterr()
    assert stopped.value.code == 2 and captured.out == ""
    assert "invalid int value: 'big'" in last_line(captured.err)


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


def _float_scene(path: Path, bad: dict[tuple[int, int, int], float], nodata: float | None) -> Path:
    """A float32 RGB raster on the 12-bit scale (values 16..4080), `bad` pixels overwritten."""
    make_orthophoto(path, 128, 128, 3, dtype="float32", seed=21)
    with rasterio.open(path) as ds:
        profile, data = ds.profile, ds.read() * 16
    for (band, row, col), value in bad.items():
        data[band, row, col] = value
    if nodata is not None:
        profile["nodata"] = nodata
    path.unlink()
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return path


def test_nan_and_infinity_are_nodata_and_never_reach_the_model(tmp_path: Path, unet3: Path) -> None:
    pixels = {(0, 10, 10): np.nan, (1, 20, 20): np.inf, (2, 30, 30): -np.inf}
    hostile = _float_scene(tmp_path / "nan.tif", pixels, nodata=None)
    zeroed = _float_scene(tmp_path / "zero.tif", dict.fromkeys(pixels, 0.0), nodata=0.0)
    assert main(["predict", str(hostile), str(tmp_path / "a.tif"), "--model", str(unet3),
                 "--progress", "none"]) == 0  # fmt: skip
    assert main(["predict", str(zeroed), str(tmp_path / "b.tif"), "--model", str(unet3),
                 "--progress", "none"]) == 0  # fmt: skip
    a, b = read_codes(tmp_path / "a.tif"), read_codes(tmp_path / "b.tif")
    assert all(a[r, c] == 0 for _, r, c in pixels) and len(np.unique(a)) > 3
    assert np.array_equal(a, b)  # the same 12-bit scale, the same pixels marked invalid


def test_nan_in_the_elevation_raster_is_nodata(tmp_path: Path, scene: Path, unet5: Path) -> None:
    with rasterio.open(scene / "dsm.tif") as ds:
        profile, dsm = ds.profile, ds.read(1).astype("float32")
    dsm[5, 7] = np.nan
    with rasterio.open(tmp_path / "dsm.tif", "w", **(profile | {"dtype": "float32"})) as ds:
        ds.write(dsm, 1)
    args = [str(scene / "rgbi.tif"), "--model", str(unet5), "--progress", "none", "--elevation"]
    assert (
        main(["predict", args[0], str(tmp_path / "a.tif"), *args[1:], str(tmp_path / "dsm.tif")])
        == 0
    )
    assert (
        main(["predict", args[0], str(tmp_path / "b.tif"), *args[1:], str(scene / "dsm.tif")]) == 0
    )
    a, b = read_codes(tmp_path / "a.tif"), read_codes(tmp_path / "b.tif")
    assert a[5, 7] == 0 and b[5, 7] > 0
    assert (a != b).sum() < 64 * 64 * 0.1  # the rest is the same scene


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


def test_world_extent_and_world_mask_map_the_whole_raster(
    tmp_path: Path, scene: Path, unet3: Path
) -> None:
    """A box larger than Lambert-93's domain is cut to the raster's footprint first."""
    world = box(-180, -90, 180, 90)
    gpd.GeoDataFrame({"id": [1]}, geometry=[world], crs="EPSG:4326").to_file(tmp_path / "w.gpkg")
    common = ["--model", str(unet3), "--progress", "none"]
    rgb = str(scene / "rgb.tif")
    assert (
        main(
            [
                "predict",
                rgb,
                str(tmp_path / "e.tif"),
                "--extent",
                "-180,-90,180,90,EPSG:4326",
                *common,
            ]
        )
        == 0
    )
    assert (
        main(["predict", rgb, str(tmp_path / "m.tif"), "--mask", str(tmp_path / "w.gpkg"), *common])
        == 0
    )
    assert main(["predict", rgb, str(tmp_path / "all.tif"), *common]) == 0
    whole = read_codes(tmp_path / "all.tif")
    assert np.array_equal(read_codes(tmp_path / "e.tif"), whole)
    assert np.array_equal(read_codes(tmp_path / "m.tif"), whole)
