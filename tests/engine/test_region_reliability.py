"""A region run never mixes, hides or leaves half-done what it depends on (issue 18).

Weights replaced at the same path between two runs are refused, not resumed; `--restart` cancelled
before its first block leaves no output of the old blocks, and a cancel says which blocks are
kept; a bad scheduler address, a torn manifest, a bad number or a failing mask is one line,
before any folder is made; a checkpoint that would run code is refused as such. Everything
goes through the command line on the session's generated BD ORTHO delivery (`region_case`),
one finished region (module fixture) copied where a test needs one.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.cli import build_parser, main
from engine.errors import Cancelled
from engine.progress import Reporter
from engine.region_cli import cancel_message
from tests.fixtures.bdortho import RegionCase
from tests.fixtures.generate import make_unet_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FOLDER_OUTPUTS = (
    "landcover.vrt",
    "landcover.qml",
    "stats.json",
    "stats.csv",
    "stats_blocks.csv",
    "run.json",
)


@dataclass(frozen=True)
class Finished:
    """A region mapped once (four blocks done, every folder output there) and its weights."""

    out: Path
    weights: Path


@pytest.fixture(scope="module")
def finished(region_case: RegionCase, tmp_path_factory: pytest.TempPathFactory) -> Finished:
    root = tmp_path_factory.mktemp("finished")
    weights = Path(shutil.copyfile(region_case.checkpoint, root / "weights.pth"))
    out = root / "region"
    assert main(region_case.args(out, "--model", str(weights), "--workers", "1")) == 0
    assert all((out / name).is_file() for name in FOLDER_OUTPUTS)
    return Finished(out, weights)


def copy_of(finished: Finished, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished.out, tmp_path / "region"))


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def done(out: Path) -> int:
    return sum(b["state"] == "done" for b in manifest(out)["blocks"].values())


def test_weights_replaced_at_the_same_path_are_refused_not_mixed(
    region_case: RegionCase, finished: Finished, tmp_path: Path, capsys
) -> None:
    out = copy_of(finished, tmp_path)
    weights = Path(shutil.copyfile(finished.weights, tmp_path / "moved.pth"))
    args = region_case.args(out, "--model", str(weights), "--workers", "1")
    assert main(args) == 0  # the same weights elsewhere: the model is its content, resumed
    assert json.loads((out / "run.json").read_text())["computed_this_run"] == 0
    before = (out / "manifest.json").read_bytes()

    make_unet_checkpoint(weights, 4, 19, "flair-inc", seed=8)  # other weights, same path
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "the model weights changed since the 4 block(s) already done" in err
    assert f"{weights} has SHA-256 " in err and "--restart" in err
    assert "other settings" not in err  # nothing else changed
    assert (out / "manifest.json").read_bytes() == before


class CancelIn(Reporter):
    """Asks the run to stop when the region phase starts (before any block is recorded), or
    once its first block is recorded."""

    def __init__(self, after_first_block: bool) -> None:
        super().__init__()
        self.after_first_block = after_first_block

    def start(self, phase: str, total: int, unit: str = "items", **extra: Any) -> None:
        super().start(phase, total, unit, **extra)
        if phase == "region" and not self.after_first_block:
            self.cancel()

    def advance(self, n: int = 1, **extra: Any) -> None:
        super().advance(n, **extra)
        if self.phase == "region":
            self.cancel()


def region_command(argv: list[str], reporter: Reporter) -> tuple[argparse.Namespace, str]:
    """The command line's own `region` command, with this reporter; the Cancelled message."""
    args = build_parser().parse_args(argv)
    with pytest.raises(Cancelled) as stopped:
        args.func(args, reporter)
    return args, str(stopped.value)


def test_restart_cancelled_before_its_first_block_leaves_no_old_outputs(
    region_case: RegionCase, finished: Finished, tmp_path: Path
) -> None:
    out = copy_of(finished, tmp_path)
    argv = region_case.args(out, "--model", str(finished.weights), "--workers", "1")
    args, message = region_command([*argv, "--restart"], CancelIn(after_first_block=False))
    assert [n for n in FOLDER_OUTPUTS if (out / n).exists()] == []
    m = manifest(out)
    assert m["runs"] == 1 and done(out) == 0  # what the folder says agrees: nothing done
    assert message.startswith("cancelled before any block finished")
    assert "no output was left behind" not in message
    assert cancel_message(args) == message  # what the command line says after a hard stop

    args, message = region_command(argv, CancelIn(after_first_block=True))
    kept = done(out)
    assert kept >= 1 and manifest(out)["runs"] == 2
    assert message == (
        f"cancelled; the {kept} block(s) finished are kept in {out / 'blocks'} and the next run "
        "of the same command resumes from them"
    )
    assert cancel_message(args) == message


def test_a_scheduler_address_of_garbage_is_one_line(
    region_case: RegionCase, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "region"
    assert main(region_case.args(out, "--scheduler", "garbage::///")) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "flair-landcover: error: --scheduler 'garbage::///' is not a Dask scheduler address: "
        "give tcp://HOST:PORT, as `dask scheduler` prints it (e.g. tcp://10.0.0.5:8786)"
    ]
    assert not out.exists()


def test_a_manifest_record_without_state_is_not_this_engines(
    region_case: RegionCase, finished: Finished, tmp_path: Path, capsys
) -> None:
    out = copy_of(finished, tmp_path)
    m = manifest(out)
    del m["blocks"]["r000_c001"]["state"]
    (out / "manifest.json").write_text(json.dumps(m))
    assert main(region_case.args(out, "--model", str(finished.weights))) == 1
    err = capsys.readouterr().err
    assert "is not a manifest this engine wrote (block record r000_c001 lacks state)" in err
    assert "rerun with --restart" in err and "unexpected" not in err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--tile-size", "0"),
        ("--tile-size", "100"),
        ("--margin", "-1"),
        ("--margin", "64"),  # no core left in the 128 px tiles
        ("--batch-size", "0"),
        ("--block-size", "0"),
        ("--block-size", "-5"),
        ("--workers", "0"),
        ("--threads-per-worker", "0"),
        ("--retries", "-1"),
    ],
)
def test_bad_numbers_are_refused_before_any_folder(
    region_case: RegionCase, tmp_path: Path, capsys, option: str, value: str
) -> None:
    out = tmp_path / "region"
    assert main(region_case.args(out, option, value)) in (1, 2)
    err = capsys.readouterr().err
    assert f"{option} {value}" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("mask", ["far", "missing"])
def test_a_failing_mask_is_checked_first_and_leaves_nothing(
    region_case: RegionCase, tmp_path: Path, capsys, mask: str
) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    path = tmp_path / "area.gpkg"
    if mask == "far":  # 10 km east of the delivery
        far = box(420_000.0, 6_424_900.0, 420_100.0, 6_425_000.0)
        gpd.GeoDataFrame(geometry=[far], crs="EPSG:2154").to_file(path)
    out = tmp_path / "region"
    no_model = tmp_path / "never-loaded.pth"  # the mask fails first, so this is never read
    assert main(region_case.args(out, "--mask", str(path), "--model", str(no_model))) == 1
    err = capsys.readouterr().err
    expected = "does not overlap the input raster" if mask == "far" else "does not exist"
    assert f"mask {path}" in err and expected in err and "never-loaded" not in err
    assert not out.exists()  # no blocks/, no inputs/, not even the folder


class Picklable(collections.OrderedDict):
    """An OrderedDict subclass: torch pickles it as a class of this module."""


class MakesAFolder:
    """Unpickling this would call os.mkdir: code, run by loading."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.path),))


@pytest.mark.parametrize("payload", ["subclass", "namespace", "call"])
def test_a_checkpoint_that_would_run_code_is_refused_for_safety(
    region_case: RegionCase, tmp_path: Path, capsys, payload: str
) -> None:
    state = torch.load(region_case.checkpoint, weights_only=True)
    marker = tmp_path / "made-by-unpickling"
    obj, name = {
        "subclass": (Picklable(state), f"{Picklable.__module__}.Picklable"),
        "namespace": ({"state_dict": state, "hparams": argparse.Namespace(lr=0.1)}, "Namespace"),
        "call": ({"state_dict": state, "x": MakesAFolder(marker)}, f"{os.mkdir.__module__}.mkdir"),
    }[payload]
    checkpoint = tmp_path / "pickled.pth"
    torch.save(obj, checkpoint)
    out = tmp_path / "region"
    assert main(region_case.args(out, "--model", str(checkpoint))) == 1
    err = capsys.readouterr().err
    assert f"{checkpoint} holds objects other than tensors (" in err and name in err
    assert "refused for safety" in err and "weights.safetensors" in err
    assert "not a readable torch checkpoint" not in err
    assert not marker.exists() and not out.exists()
