"""Four faults a département run meets, each made for real mid-run, each ending in one line and
a folder the same command resumes (issue 18): the Dask scheduler killed, a worker killed by
Dask for going over its memory limit, the output disk filling up, an input tile deleted.

Real processes throughout: the engine's command line as a subprocess (`--progress json`) that
the test acts on once its first block is recorded, `dask scheduler` / `dask worker` started
here, a size-limited tmpfs (root only). Every fault is followed by a rerun whose map equals
`predict`'s on the whole mosaic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from engine.cli import main
from engine.digest import file_sha256
from tests.fixtures.bdortho import RegionCase, read_map, truncate_tile
from tests.fixtures.worker_faults import fault_env

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[2]
BLOCKS = {"r000_c000", "r000_c001", "r001_c000", "r001_c001"}
DASK = str(Path(sys.executable).with_name("dask"))


@dataclasses.dataclass
class Ended:
    """How a command-line run that was acted on mid-run ended."""

    code: int
    error: str  # the `error` event's message ("" when none)
    stderr: str
    seconds_after_act: float


def engine_env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(REPO)}


def records(out: Path) -> dict[str, dict]:
    return json.loads((out / "manifest.json").read_text())["blocks"]


def states(out: Path, state: str) -> set[str]:
    return {k for k, r in records(out).items() if r["state"] == state}


def intact(out: Path, record: dict) -> bool:
    return all(
        (out / e["file"]).is_file() and file_sha256(out / e["file"]) == e["sha256"]
        for e in record["outputs"].values()
    )


def partials(out: Path) -> list[str]:
    return [p.name for p in (out / "blocks").iterdir() if ".partial-" in p.name]


def run_and_act(args: list[str], act: Callable[[], None]) -> Ended:
    """Run `flair-landcover ARGS --progress json`; call `act` once the first block is recorded
    (its `progress` event), then let the run end by itself."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", *args, "--progress", "json"],
        cwd=REPO,
        env=engine_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    acted_at = None
    error = ""
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "error":
            error = event["message"]
        if acted_at is None and event.get("phase") == "region" and event["event"] == "progress":
            act()
            acted_at = time.monotonic()
    code = proc.wait(timeout=120)
    assert acted_at is not None, "the run ended before its first block"
    return Ended(code, error, proc.stderr.read(), time.monotonic() - acted_at)


@dataclasses.dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]


@contextlib.contextmanager
def dask_cluster(
    tmp_path: Path, worker_args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """A `dask scheduler` and one `dask worker` (one thread) on 127.0.0.1, killed at the end
    with every process they started."""
    from distributed import Client

    file = tmp_path / "scheduler.json"
    env = engine_env() | (env or {})
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115 - closed in finally
    common = ["--no-dashboard", "--scheduler-file", str(file)]
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", *common],
        env=env,
        stdout=log,
        stderr=log,
    )
    procs = [scheduler]
    try:
        worker = subprocess.Popen(
            [DASK, "worker", "--nthreads", "1", "--host", "127.0.0.1", *worker_args, *common],
            env=env,
            stdout=log,
            stderr=log,
            cwd=REPO,
        )
        procs.append(worker)
        with Client(scheduler_file=str(file), timeout=60) as client:
            client.wait_for_workers(1, timeout=120)
            address = client.scheduler.address
        yield Cluster(address, scheduler, [worker])
    finally:
        kill_all(procs)
        log.close()


def kill_all(procs: list[subprocess.Popen]) -> None:
    """SIGKILL these processes and their children (a nanny's worker), and wait for them."""
    tree: list[psutil.Process] = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(proc.pid)
            tree += [parent, *parent.children(recursive=True)]
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(tree, timeout=60)
    for proc in procs:
        proc.wait(timeout=60)


def rerun_locally(case: RegionCase, out: Path) -> None:
    """The same command with one local worker: it maps what is left; the map is predict's."""
    assert main(case.args(out, "--workers", "1")) == 0
    assert states(out, "done") == BLOCKS
    assert np.array_equal(read_map(out / "landcover.vrt"), case.reference)
    assert not partials(out)


# --- 1. the scheduler goes away mid-run -------------------------------------------------------


def test_scheduler_lost_mid_run_stops_at_once_then_a_rerun_resumes(
    region_case: RegionCase, tmp_path: Path
) -> None:
    out = tmp_path / "region"
    with dask_cluster(tmp_path) as cluster:
        ended = run_and_act(
            region_case.args(out, "--scheduler", cluster.address), cluster.scheduler.kill
        )
        kill_all(cluster.workers)  # a worker left mapping a block must not race the rerun
    assert ended.code == 1
    assert ended.seconds_after_act < 60, ended
    done = states(out, "done")
    assert 1 <= len(done) < 4
    assert ended.error == (
        f"lost the Dask scheduler {cluster.address} mid-run; the run stopped, keeping the "
        f"{len(done)} block(s) done: start it again (or leave out --scheduler for local "
        "workers), then rerun the same command to map the rest"
    )
    assert "report it" not in ended.stderr and "Traceback" not in ended.stderr, ended.stderr
    assert set(records(out)) == done  # blocks cut off are not recorded as failed
    assert all(intact(out, records(out)[k]) for k in done)

    rerun_locally(region_case, out)
    assert {k for k, r in records(out).items() if r["run"] == 1} == done


# --- 2. a worker that goes over its memory limit ----------------------------------------------


def test_worker_killed_for_its_memory_fails_only_its_block(
    region_case: RegionCase, tmp_path: Path, capsys
) -> None:
    """Dask's nanny kills a worker whose memory goes over 95% of `--memory-limit` (as SLURM or
    the kernel would, but telling the scheduler why). The block that needs that memory dies
    on every worker it is given, up to the scheduler's allowed failures (`--retries` on a
    local cluster); the others are mapped on the restarted worker."""
    out = tmp_path / "region"
    env = {  # what the engine sets on its local cluster for --retries 1
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
        **fault_env(hog="r000_c001"),  # that block takes memory until its worker is killed
    }
    with dask_cluster(tmp_path, ("--memory-limit", "2GB"), env) as cluster:
        assert main(region_case.args(out, "--scheduler", cluster.address)) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(
        "flair-landcover: error: 1 of 4 block(s) failed (r000_c001: the workers mapping it died "
        "each time, out of memory: Dask killed 2 of the 2 for going over their memory limit (at "
    ), last
    assert last.endswith(
        "GB); lower --tile-size or --batch-size, run fewer workers per machine or give them "
        f"more memory); the others are mapped in {out / 'landcover.vrt'}; rerun the same "
        "command to retry the failed ones"
    ), last
    assert states(out, "failed") == {"r000_c001"}
    assert states(out, "done") == BLOCKS - {"r000_c001"}
    log = (tmp_path / "dask.log").read_text(errors="replace")
    assert log.count("exceeded 95% memory budget") == 2  # the nanny's kills, one per try

    rerun_locally(region_case, out)  # enough memory now: only that block is mapped
    assert {k for k, r in records(out).items() if r["run"] == 2} == {"r000_c001"}


# --- 3. the output disk fills up --------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB tmpfs (root only), unmounted at the end."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)


def fill(disk: Path, room_for_manifest: bool) -> Callable[[], None]:
    """Fill the disk with one file, then give back room for one more copy of the manifest
    (written under a temporary name, then renamed) but not for a block, or none."""

    def act() -> None:
        leave_bytes = 12 << 10 if room_for_manifest else 0  # a manifest, not a block (20 KB)
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        os.ftruncate(fd, os.fstat(fd).st_size - leave_bytes)
        os.close(fd)

    return act


@pytest.mark.parametrize(
    "room_for_manifest", [True, False], ids=["room-for-the-manifest-not-a-block", "no-room-at-all"]
)
def test_disk_full_mid_run_stops_keeping_whole_blocks_then_resumes(
    region_case: RegionCase, small_disk: Path, room_for_manifest: bool
) -> None:
    """A block's files (about 20 KB) no longer fit after the first block: with room left for
    the manifest, the block is recorded failed, with the disk and folder named; with none,
    the manifest on disk stays the previous one, whole. Either way the run stops at once
    (every other block writes to the same disk) and keeps nothing half-written."""
    out = small_disk / "region"
    ended = run_and_act(
        region_case.args(out, "--workers", "1"), fill(small_disk, room_for_manifest)
    )
    assert ended.code == 1
    tail = (
        "; the run stopped, keeping the 1 block(s) done: fix that, then rerun the same command "
        "to map the rest"
    )
    if room_for_manifest:
        assert ended.error.startswith(
            f"block r000_c001 could not be written: the disk holding {out / 'blocks'} is full "
        ), ended.error
        assert states(out, "failed") == {"r000_c001"}
        assert "is full" in records(out)["r000_c001"]["reason"]
    else:
        assert ended.error.startswith(
            f"the disk holding {out} is full (0.0 MB free) while writing manifest.json; "
        ), ended.error
        assert "(block r000_c001 failed, not recorded)" in ended.error
        assert set(records(out)) == {"r000_c000"}
    assert ended.error.endswith(tail), ended.error
    assert "report it" not in ended.stderr and "Traceback" not in ended.stderr
    assert states(out, "done") == {"r000_c000"}  # the manifest reads back, valid
    assert intact(out, records(out)["r000_c000"])
    assert not (out / "blocks" / "r000_c001.tif").exists()  # nothing half-written in place

    (small_disk / "filler").unlink()  # room again
    rerun_locally(region_case, out)
    assert records(out)["r000_c000"]["run"] == 1


# --- 4. an input tile disappears mid-run -----------------------------------------------------


def copy_case(case: RegionCase, root: Path) -> RegionCase:
    """The case on a copy of its delivery (this test spoils a tile of it)."""
    d = case.delivery
    new_root = Path(shutil.copytree(d.root, root / "delivery"))
    moved = {
        name: new_root / getattr(d, name).relative_to(d.root) for name in ("rgb_dir", "irc_dir")
    }
    return dataclasses.replace(case, delivery=dataclasses.replace(d, root=new_root, **moved))


@pytest.mark.parametrize("spoil", ["deleted", "truncated"])
def test_tile_spoilt_mid_run_fails_the_blocks_that_need_it_naming_it(
    region_case: RegionCase, tmp_path: Path, spoil: str
) -> None:
    """RVB tile (2, 1) is read by the two lower blocks only (128 px tiles, 192 px blocks);
    one local worker maps the blocks in order, so it is spoilt before they start: deleted, or
    cut short as an interrupted copy leaves it."""
    case = copy_case(region_case, tmp_path)
    tile = case.delivery.rgb_tile(2, 1)
    kept = shutil.copy2(tile, tmp_path / "kept.bin")  # its time too: the rerun checks it
    out = tmp_path / "region"
    act = tile.unlink if spoil == "deleted" else lambda: truncate_tile(tile, 0.5)
    ended = run_and_act(case.args(out, "--workers", "1"), act)
    assert ended.code == 1
    reason = records(out)["r001_c000"]["reason"]
    if spoil == "deleted":
        assert reason == (
            f"input tile {tile} is gone since the inputs were checked (deleted or moved during "
            "the run): put it back"
        )
    else:  # GDAL names the file only: the IRC tile of that name is told apart by a read
        assert reason.startswith(f"{tile} is truncated or corrupt (GDAL: "), reason
    assert ended.error == (
        f"2 of 4 block(s) failed (r001_c000: {reason}; r001_c001: {reason}); the others are "
        f"mapped in {out / 'landcover.vrt'}; rerun the same command to retry the failed ones"
    )
    assert "mosaic.vrt" not in ended.error
    assert states(out, "done") == {"r000_c000", "r000_c001"}
    assert states(out, "failed") == {"r001_c000", "r001_c001"}
    assert "report it" not in ended.stderr

    shutil.copy2(kept, tile)  # the same tile back (same time): the rerun maps the two blocks
    rerun_locally(case, out)
    assert {k for k, r in records(out).items() if r["run"] == 2} == {"r001_c000", "r001_c001"}
