"""The region's input audit, through `flair-landcover region` on generated BD ORTHO deliveries.

RVB, IRC and elevation tiles are checked alike before any work, and every problem comes in one
message naming its files: an elevation tile missing, a 16-bit tile among 8-bit ones, another
CRS, band count or nodata, tiles overlapping with other pixels, a truncated tile. A refusal
leaves no mosaic and no map. A tile's own nodata is no data in the map; a symlink loop under a
`**` glob is not followed and a file reached twice is taken once.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from tests.fixtures.bdortho import (
    TILE_ARGS,
    Delivery,
    RegionCase,
    make_delivery,
    read_map,
    rewrite_tile,
    tile_name,
    truncate_tile,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def case(region_case: RegionCase) -> RegionCase:
    return region_case


def args(out: Path, d: Delivery, case: RegionCase, *extra: str) -> list[str]:
    return [
        "region",
        str(out),
        "--rgb",
        d.rgb_glob,
        "--irc",
        d.irc_glob,
        "--model",
        str(case.checkpoint),
        *TILE_ARGS,
        "--workers",
        "1",
        "--threads-per-worker",
        "1",
        *extra,
    ]


def refused(argv: list[str], capsys) -> str:
    """Run the command; it must fail before any work. Returns its error output."""
    out = Path(argv[1])
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the region's inputs have" in err
    assert not (out / "inputs").exists()  # no mosaic written, so no model loaded either
    assert not (out / "landcover.vrt").exists() and not (out / "manifest.json").exists()
    return err


def test_elevation_gap_named_before_any_work(case, tmp_path: Path, capsys) -> None:
    d = make_delivery(tmp_path / "d", tile_px=64, elevation=True, missing_elevation=((1, 1),))
    err = refused(args(tmp_path / "out", d, case, "--elevation", d.elevation_glob), capsys)
    assert "--elevation: no data for 1 RVB tile(s)" in err
    assert tile_name(1, 1, d.suffix) in err


def test_mixed_data_types_refused_naming_the_tile(case, tmp_path: Path, capsys) -> None:
    d = make_delivery(tmp_path / "d", tile_px=64)
    rewrite_tile(d.rgb_tile(0, 1), dtype="uint16")
    err = refused(args(tmp_path / "out", d, case), capsys)
    assert "1 problem(s)" in err
    assert "--rgb and --irc: 1 tile(s) are not uint8 like" in err
    assert f"{tile_name(0, 1, d.suffix)} (uint16)" in err


def test_truncated_tile_named_before_any_work(case, tmp_path: Path, capsys) -> None:
    d = make_delivery(tmp_path / "d", tile_px=64)
    broken = d.rgb_tile(2, 2)
    truncate_tile(broken)
    err = refused(args(tmp_path / "out", d, case), capsys)
    assert f"{broken}: its last block cannot be read" in err
    assert "mosaic.vrt" not in err


def test_other_crs_band_count_and_nodata_named(case, tmp_path: Path, capsys) -> None:
    d = make_delivery(tmp_path / "d", tile_px=64)
    rewrite_tile(d.rgb_tile(0, 0), crs="EPSG:32631")
    rewrite_tile(d.rgb_tile(0, 2), count=4)
    rewrite_tile(next(d.irc_dir.rglob(tile_name(1, 0, d.suffix))), nodata=0)
    err = refused(args(tmp_path / "out", d, case), capsys)
    assert "3 problem(s)" in err
    assert "--rgb and --irc: 1 tile(s) are not in EPSG:2154 like" in err
    assert f"{tile_name(0, 0, d.suffix)} (EPSG:32631)" in err
    assert "--rgb: 1 tile(s) are not of 3 band(s) like" in err
    assert f"{tile_name(0, 2, d.suffix)} (4 band(s))" in err
    assert "--irc: 1 tile(s) are not of no nodata like" in err
    assert f"{tile_name(1, 0, d.suffix)} (nodata 0)" in err


def test_overlap_with_other_pixels_refused_naming_the_pair(case, tmp_path: Path, capsys) -> None:
    d = make_delivery(tmp_path / "d", tile_px=64)
    again = d.rgb_dir / "REPRISE" / tile_name(0, 1, d.suffix).replace("-E080", "-E080-v2")
    again.parent.mkdir()
    shutil.copy(d.rgb_tile(0, 1), again)
    rewrite_tile(again, edit=lambda a: 255 - a)  # the same place, other pixels
    err = refused(args(tmp_path / "out", d, case), capsys)
    assert "--rgb: 1 pair(s) of tiles overlap with different pixels" in err
    assert f"{tile_name(0, 1, d.suffix)} and {again.name}" in err
    assert "remove one of each pair" in err


def test_every_problem_in_one_message(case, tmp_path: Path, capsys) -> None:
    d = make_delivery(tmp_path / "d", tile_px=64, elevation=True, missing_elevation=((2, 0),))
    rewrite_tile(d.rgb_tile(0, 0), dtype="uint16")
    rewrite_tile(d.rgb_tile(0, 1), count=1)
    truncate_tile(d.rgb_tile(1, 1))
    irc = next(d.irc_dir.rglob(tile_name(2, 2, d.suffix)))
    os.symlink(irc, d.rgb_dir / f"extra{d.suffix}")  # an IRC tile in RVB: in two products
    argv = args(tmp_path / "out", d, case, "--elevation", d.elevation_glob)
    err = refused(argv, capsys)
    lines = [line.strip() for line in err.splitlines()]
    for start in (
        "--rgb: 1 file(s) cannot be read",  # truncated
        "--rgb and --irc: 1 tile(s) are not uint8",
        "--rgb (RVB): 1 file(s) have fewer than 3 bands",
        f"--elevation: no data for 1 RVB tile(s) or part of them: {tile_name(2, 0, d.suffix)}",
        f"--rgb: 1 pair(s) of tiles overlap with different pixels, so the order of the files "
        f"would decide which shows: {tile_name(2, 2, d.suffix)} and extra{d.suffix}",
        f"1 file(s) are in two products at once: extra{d.suffix} (--rgb and --irc)",
        f"--irc (IRC) lacks 1 tile(s) that --rgb (RVB) has: extra{d.suffix}",
    ):
        assert sum(line.startswith(start) for line in lines) == 1, (start, err)
    assert "7 problem(s)" in err


def test_tile_nodata_is_no_data_in_the_map(case, tmp_path: Path, capsys) -> None:
    d = make_delivery(tmp_path / "d", tile_px=128, nodata=0)  # the scene has no 0

    def hole(a: np.ndarray) -> np.ndarray:
        a[:, 32:96, 32:96] = 0  # every band at the nodata
        return a

    def nir_hole(a: np.ndarray) -> np.ndarray:
        a[0, :32, :32] = 0  # NIR (IRC band 1) only
        return a

    rewrite_tile(d.rgb_tile(1, 1), edit=hole)
    rewrite_tile(next(d.irc_dir.rglob(tile_name(0, 2, d.suffix))), edit=nir_hole)
    out = tmp_path / "out"
    assert main(args(out, d, case)) == 0
    mapped = read_map(out / "landcover.vrt")
    empty = np.zeros(mapped.shape, dtype=bool)
    empty[128 + 32 : 128 + 96, 128 + 32 : 128 + 96] = True
    empty[0:32, 256 : 256 + 32] = True
    assert (mapped[empty] == 0).all()  # no data: no class
    assert (mapped[~empty] > 0).all()


def test_symlink_loop_not_followed_and_files_taken_once(case, tmp_path: Path, caplog) -> None:
    d = make_delivery(tmp_path / "d", tile_px=128)  # the shared case's delivery, again
    data = d.rgb_dir / "1_DONNEES_LIVRAISON"
    os.symlink(d.rgb_dir.parent, data / "loop")  # a link to a folder above it: RVB and IRC
    os.symlink(data, d.rgb_dir / "SAME")  # every RVB file again, under a second path
    copy = d.rgb_dir / "COPIE" / tile_name(2, 2, d.suffix)
    copy.parent.mkdir()
    shutil.copy(d.rgb_tile(2, 2), copy)  # another file with the same pixels
    out = tmp_path / "out"
    started = time.perf_counter()
    assert main(args(out, d, case)) == 0
    assert time.perf_counter() - started < 120
    err = caplog.text  # warnings: on stderr from the command line
    assert f"1 link(s) lead back to a folder above them (a loop), not followed: {data}/loop" in err
    assert "9 file(s) reached twice (through links), taken once" in err
    name = tile_name(0, 0, d.suffix)
    assert f"SAME/{name} (the same file as 1_DONNEES_LIVRAISON/{name})" in err
    same = f"1_DONNEES_LIVRAISON/{copy.name} and COPIE/{copy.name}"
    assert f"1 pair(s) of tiles overlap with the same pixels (taken as they are): {same}" in err
    mosaic = (out / "inputs" / "mosaic.vrt").read_text()
    red = mosaic.split("</VRTRasterBand>")[0]
    assert red.count("<ComplexSource>") == 10  # nine tiles and the identical copy
    assert "OHR_IRC" not in red and "/SAME/" not in red and "/loop/" not in red
    assert np.array_equal(read_map(out / "landcover.vrt"), case.reference)


def test_a_tile_copied_again_resumes_and_one_edited_is_refused(
    case: RegionCase, tmp_path: Path, capsys
) -> None:
    """Inputs are recorded by size, time and, taken once, content: a tile whose time changed
    but not its pixels (copied again) resumes; one whose content changed is refused, named."""
    d = make_delivery(tmp_path / "d", tile_px=128)
    out = tmp_path / "out"
    assert main(args(out, d, case)) == 0
    recorded = json.loads((out / "inputs" / "sha256.json").read_text())
    tile = d.rgb_tile(1, 1)
    assert len(recorded) == 18 and len(recorded[str(tile)]) == 64  # 9 RVB + 9 IRC tiles

    stat = tile.stat()
    os.utime(tile, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # copied again
    assert main(args(out, d, case)) == 0
    assert json.loads((out / "run.json").read_text())["computed_this_run"] == 0  # resumed

    data = bytearray(tile.read_bytes())
    data[-100] ^= 0xFF  # the same size, other content
    tile.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(args(out, d, case)) == 1
    err = capsys.readouterr().err
    assert f"1 input file(s) changed since the blocks done: {tile} (modified " in err
    assert "--restart" in err
