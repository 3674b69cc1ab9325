"""Hostile values on the command line: numbers that are not numbers, coordinates that cannot
be transformed, values out of range. One clear last line each, never "report it", nothing left
at the destination; the shared check is tests/fixtures/hostile.py's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.hostile import ORTHO_WKT, Case, check_case, make_checkpoints, make_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scene(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoints(tmp_path_factory.mktemp("hostile_ckpt"))


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
    check_case(case, capsys, tmp_path, scene, checkpoints, unet3, unet5)
