"""A region run survives what a long run on many machines meets: a worker dying mid-block, the
client killed mid-run, workers on an existing cluster. Each ends with `predict`'s map.

Real processes throughout: Dask worker processes on 127.0.0.1, the engine's command line as a
subprocess SIGKILLed after its first block, and `dask scheduler` / `dask worker` started here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest

from engine.cli import main
from tests.fixtures.bdortho import RegionCase, read_map
from tests.fixtures.worker_faults import faults_in_this_process

REPO = Path(__file__).resolve().parents[2]
BLOCKS = {"r000_c000", "r000_c001", "r001_c000", "r001_c001"}


@pytest.fixture
def case(region_case: RegionCase) -> RegionCase:
    return region_case


def blocks(out: Path) -> dict[str, dict]:
    return json.loads((out / "manifest.json").read_text())["blocks"]


def engine_env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(REPO)}


def test_worker_deaths_fail_a_block_then_a_rerun_maps_it(
    case, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "region"
    with faults_in_this_process(monkeypatch, die="r000_c001"):  # its worker dies on it each time
        assert main(case.args(out, "--workers", "1", "--retries", "0")) == 1
    err = capsys.readouterr().err
    assert "1 of 4 block(s) failed (r000_c001: the workers mapping it died" in err
    records = blocks(out)
    assert records["r000_c001"]["state"] == "failed"
    assert "died each time (killed or out of memory" in records["r000_c001"]["reason"]
    assert {k for k, b in records.items() if b["state"] == "done"} == BLOCKS - {"r000_c001"}
    partial = read_map(out / "landcover.vrt")  # the others are mapped, that block is no data
    assert np.array_equal(partial[:192, :192], case.reference[:192, :192])
    assert not partial[:192, 192:].any()

    marker = tmp_path / "worker-died"
    with faults_in_this_process(monkeypatch, die=f"r000_c001:{marker}"):  # now once, mid-block
        assert main(case.args(out, "--workers", "1")) == 0
    died = int(marker.read_text())
    records = blocks(out)
    assert {k for k, b in records.items() if b["run"] == 2} == {"r000_c001"}
    assert not records["r000_c001"]["worker"].endswith(f":{died}")  # retried on a new worker
    assert np.array_equal(read_map(out / "landcover.vrt"), case.reference)
    assert not [p for p in (out / "blocks").iterdir() if ".partial-" in p.name]


def test_client_killed_then_same_command_resumes(case, tmp_path: Path) -> None:
    out = tmp_path / "region"
    argv = [sys.executable, "-m", "engine", *case.args(out, "--workers", "1", "--progress", "json")]
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        env=engine_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    children: list[psutil.Process] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event.get("phase") == "region" and event["event"] == "start":
            children = psutil.Process(proc.pid).children(recursive=True)
        if event.get("phase") == "region" and event["event"] == "progress":
            break  # one block is recorded: kill the client now
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(children, timeout=60)
    assert children and not alive  # the worker processes end with their client
    finished = {k for k, b in blocks(out).items() if b["state"] == "done"}
    assert 1 <= len(finished) < 4

    assert main(case.args(out, "--workers", "1")) == 0
    records = blocks(out)
    assert {k for k, b in records.items() if b["run"] == 2} == BLOCKS - finished
    assert all(records[k]["run"] == 1 for k in finished)
    run = json.loads((out / "run.json").read_text())
    assert run["computed_this_run"] == 4 - len(finished)
    assert np.array_equal(read_map(out / "landcover.vrt"), case.reference)


def test_existing_scheduler_and_two_workers(case, tmp_path: Path) -> None:
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    file = tmp_path / "scheduler.json"
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115 - closed in finally
    common = ["--no-dashboard", "--scheduler-file", str(file)]
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", *common],
            env=engine_env(),
            stdout=log,
            stderr=log,
        )
    ]
    try:
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        dask,
                        "worker",
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--name",
                        f"w{i}",
                        *common,
                    ],
                    env=engine_env(),
                    stdout=log,
                    stderr=log,
                    cwd=REPO,
                )
            )
        with Client(scheduler_file=str(file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            address = client.scheduler.address
        out = tmp_path / "region"
        assert main(case.args(out, "--scheduler", address)) == 0
        assert {k for k, b in blocks(out).items() if b["state"] == "done"} == BLOCKS
        assert np.array_equal(read_map(out / "landcover.vrt"), case.reference)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
        log.close()
