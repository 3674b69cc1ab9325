"""A region's folder agrees with its manifest at every instant, whatever stops it (issue 18).

Every folder-level output present (the map and confidence mosaics, statistics, block table,
polygons, zone table, run record) must describe exactly the blocks `manifest.json` says are
done, whose files are there with their checksums; no temporary is left by a stop that could
clean up (`check_consistent`). A real `python -m engine region ... --progress json` on the
session's generated BD ORTHO delivery is stopped at each phase it reports: SIGTERM when the
phase's first event shows, in a first run, in a resume and in a `--restart`; SIGKILL in the
blocks, in a cancel and in the outputs. Each SIGTERM ends within a few seconds with 143; each
chain of stops on one folder resumes from the one before, and the same command run to its end
gives `predict`'s map. Also: the manifest records the run by content (the mask's files too),
and a refused resume says what changed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from engine.cli import main
from engine.digest import file_sha256
from engine.region.manifest import settings_hash
from tests.fixtures.bdortho import ORIGIN_XY, RegionCase, read_map
from tests.fixtures.worker_faults import fault_env

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[2]
SIDE_M = 384 * 0.2  # the case's region: 384 px at 0.2 m
PIXEL_M2 = 0.2 * 0.2
BLOCKS = {"r000_c000", "r000_c001", "r001_c000", "r001_c001"}
STOP_S = 5.0  # a SIGTERM ends the run within this (the local cluster closes first)
# what shows that a run has reached each phase (its first JSON event there)
PHASES: dict[str, Callable[[dict[str, Any]], bool]] = {
    # inputs audited; the mask is read and the model loads
    "inputs": lambda e: e["event"] == "log" and e["message"].startswith("inputs: "),
    # model loaded and hashed; the manifest is read, the input mosaics written next
    "model": lambda e: e["event"] == "log" and e["message"].startswith("model weights "),
    # input mosaics written; the grid and its blocks are fixed, the manifest compared
    "mosaics": lambda e: e["event"] == "log" and e["message"].startswith("processing in "),
    # blocks listed; the outputs retired if need be, the manifest saved, the cluster starts
    "manifest": lambda e: e["event"] == "log" and " block(s) of up to " in e["message"],
    # the local cluster is up; blocks are submitted
    "cluster": lambda e: e["event"] == "log" and e["message"].startswith("Dask local cluster"),
    "blocks": lambda e: e.get("phase") == "region" and e["event"] == "start",
    "first block": lambda e: e.get("phase") == "region" and e["event"] == "progress",
    # the folder's outputs are being written: the map, statistics, then the polygons merged
    "outputs": lambda e: e.get("phase") == "polygons" and e["event"] == "start",
    "zones": lambda e: e.get("phase") == "zones" and e["event"] == "start",
}


@dataclass(frozen=True)
class Setup:
    """The case, a zones layer over the region and the options every run here shares."""

    case: RegionCase
    zones: Path

    def argv(self, out: Path, *extra: str) -> list[str]:
        options = ("--workers", "1", "--confidence", "--polygons", "--zones", str(self.zones))
        return [*self.case.args(out, *options, *extra), "--progress", "json"]


@pytest.fixture(scope="module")
def setup(region_case: RegionCase, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    import geopandas as gpd
    from shapely.geometry import box

    x0, y1 = ORIGIN_XY
    halves = [  # two zones that tile the region exactly: their mapped areas add up to the map's
        box(x0, y1 - SIDE_M, x0 + SIDE_M / 2, y1),
        box(x0 + SIDE_M / 2, y1 - SIDE_M, x0 + SIDE_M, y1),
    ]
    zones = tmp_path_factory.mktemp("zones") / "halves.gpkg"
    gpd.GeoDataFrame({"name": ["west", "east"]}, geometry=halves, crs="EPSG:2154").to_file(zones)
    return Setup(region_case, zones)


def engine_env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(REPO)}


@dataclass
class Run:
    """A `region` command running as a subprocess, read event by event."""

    proc: subprocess.Popen
    stderr: Path
    children: list[psutil.Process] = field(default_factory=list)

    @classmethod
    def start(cls, setup: Setup, out: Path, *extra: str, env: dict[str, str] | None = None) -> Run:
        stderr = out.with_name(f"{out.name}.stderr")
        with open(stderr, "a") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "engine", *setup.argv(out, *extra)],
                cwd=REPO,
                env=engine_env() | (env or {}),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        return cls(proc, stderr)

    def until(self, phase: str) -> None:
        """Read events until the first one of `phase`."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            if PHASES[phase](event):
                self.children = psutil.Process(self.proc.pid).children(recursive=True)
                return
        self.proc.wait()
        pytest.fail(f"the run ended before {phase}: {self.stderr.read_text()[-3000:]}")

    def stop(self, *signals: signal.Signals, between_s: float = 0.0) -> tuple[int, float, str]:
        """Send `signals` (`between_s` apart); the exit code, the seconds the process took to
        end after the first, and the last event. Its worker processes end too."""
        assert self.proc.stdout is not None
        sent = time.monotonic()
        for i, sig in enumerate(signals):
            if i:
                time.sleep(between_s)  # a second signal while the first is being handled
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=120)
        took = time.monotonic() - sent
        _, alive = psutil.wait_procs(self.children, timeout=60)
        assert not alive, f"worker processes outlive their client: {alive}"
        rest = self.proc.stdout.read().splitlines()
        self.proc.stdout.close()
        return code, took, rest[-1] if rest else ""


def complete(setup: Setup, out: Path, *extra: str) -> dict[str, Any]:
    """Run the command to its end: `predict`'s map, a consistent folder; returns run.json."""
    done = subprocess.run(
        [sys.executable, "-m", "engine", *setup.argv(out, *extra)],
        cwd=REPO,
        env=engine_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert np.array_equal(read_map(out / "landcover.vrt"), setup.case.reference)
    records = check_consistent(out)
    assert len(records) == 4
    return json.loads((out / "run.json").read_text())


def sigterm_at(setup: Setup, out: Path, phase: str, *extra: str) -> dict[str, dict]:
    """Run until `phase`, SIGTERM: it ends soon with 143 and says so; the folder is
    consistent, with no temporary left. Returns the blocks done."""
    run = Run.start(setup, out, *extra)
    run.until(phase)
    code, took, last = run.stop(signal.SIGTERM)
    assert code == 143, f"{phase}: exit {code}: {run.stderr.read_text()[-3000:]}"
    assert took < STOP_S, f"{phase}: {took:.1f} s to stop"
    assert json.loads(last)["event"] == "error" and "cancelled" in json.loads(last)["message"]
    return check_consistent(out)


def sigkill_at(setup: Setup, out: Path, phase: str, *, cancel_first: bool = False) -> dict:
    """Run until `phase`, SIGKILL (after a SIGTERM when `cancel_first`: a cancel cut short);
    the folder is consistent, a killed run's temporaries aside. Returns the blocks done."""
    run = Run.start(setup, out)
    run.until(phase)
    signals = (signal.SIGTERM, signal.SIGKILL) if cancel_first else (signal.SIGKILL,)
    code, _, _ = run.stop(*signals, between_s=0.05)
    assert code == -signal.SIGKILL or (cancel_first and code == 143)  # the cancel was quicker
    return check_consistent(out, killed=True)


# --- the checker ---------------------------------------------------------------------------


def vrt_sources(path: Path) -> set[str]:
    """The files a region mosaic lists, relative to the folder."""
    root = ET.parse(path).getroot()
    return {s.text or "" for s in root.iter("SourceFilename")}


def check_consistent(out: Path, killed: bool = False) -> dict[str, dict]:
    """Every folder-level output present describes exactly the blocks the manifest says are
    done, and those blocks' files are there with their recorded SHA-256; no temporary or lock
    is left (but by a killed run: the next one sweeps them). Returns the done records."""
    if not out.exists():
        return {}
    names = [p.relative_to(out).as_posix() for p in out.rglob("*")]
    if not killed:
        assert not [n for n in names if ".partial-" in n or n.endswith(".lock")], names
    manifest = out / "manifest.json"
    records = json.loads(manifest.read_text())["blocks"] if manifest.exists() else {}
    done = {k: r for k, r in records.items() if r["state"] == "done"}
    for record in done.values():
        for entry in record["outputs"].values():
            path = out / entry["file"]
            assert path.is_file() and file_sha256(path) == entry["sha256"], entry["file"]
    counts = np.zeros(20, dtype=np.int64)
    for record in done.values():
        counts += np.asarray(record["counts"], dtype=np.int64)

    def files_of(kind: str) -> set[str]:
        return {r["outputs"][kind]["file"] for r in done.values()}

    present = {n for n in names if "/" not in n}
    if "landcover.vrt" in present:
        assert vrt_sources(out / "landcover.vrt") == files_of("output")
    if "confidence.vrt" in present:
        assert vrt_sources(out / "confidence.vrt") == files_of("confidence")
    if "stats.json" in present:
        stats = json.loads((out / "stats.json").read_text())
        assert stats["blocks"]["done"] == len(done)
        assert {c["code"]: c["pixels"] for c in stats["classes"]} == {
            code: int(counts[code]) for code in range(1, 20)
        }
    if "stats.csv" in present:
        with open(out / "stats.csv", newline="") as f:
            rows = {int(r["code"]): int(r["pixels"]) for r in csv.DictReader(f)}
        assert rows == {code: int(counts[code]) for code in range(20)} | {0: rows.get(0)}
    if "stats_blocks.csv" in present:
        with open(out / "stats_blocks.csv", newline="") as f:
            assert {r["block"] for r in csv.DictReader(f)} == set(done)
    if "landcover.gpkg" in present:
        import geopandas as gpd

        polygons = gpd.read_file(out / "landcover.gpkg")
        areas = polygons.assign(a=polygons.area).groupby("code")["a"].sum()
        expected = {code: counts[code] * PIXEL_M2 for code in range(1, 20) if counts[code]}
        assert set(areas.index) == set(expected)
        assert all(abs(areas[c] - expected[c]) < 1e-3 for c in expected)
    if "landcover_zones.gpkg" in present:
        import geopandas as gpd

        zones = gpd.read_file(out / "landcover_zones.gpkg", layer="zones")
        assert abs(zones["mapped_m2"].sum() - counts[1:].sum() * PIXEL_M2) < 1e-3
    if "landcover_zones.csv" in present:
        with open(out / "landcover_zones.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        mapped = sum(float(r["area_m2"]) for r in rows if int(r["code"]) > 0)
        assert abs(mapped - counts[1:].sum() * PIXEL_M2) < 1e-3
    if "run.json" in present:
        run = json.loads((out / "run.json").read_text())
        states = [r["state"] for r in records.values()]
        assert {s: run["blocks"][s] for s in ("done", "failed", "skipped")} == {
            s: states.count(s) for s in ("done", "failed", "skipped")
        }
    return done


# --- signals at every phase ----------------------------------------------------------------


def test_a_first_run_stopped_at_each_phase_by_sigterm_or_sigkill_then_resumed(
    setup: Setup, tmp_path: Path
) -> None:
    out = tmp_path / "region"
    for phase in ("mosaics", "manifest"):
        assert sigterm_at(setup, out, phase) == {}, phase  # before the first block: nothing
        # at most a manifest of none done and the input mosaics: no block file, no output
        assert not [p for p in out.rglob("*") if p.is_file() and p.parent.name != "inputs"][1:]
    assert sigterm_at(setup, out, "inputs") == {}  # the hard stop, while the model loads

    kept = sigterm_at(setup, out, "first block")
    assert 1 <= len(kept) < 4 and not (out / "landcover.vrt").exists()
    kept = sigkill_at(setup, out, "first block")  # a worker may be mid-block: its temporaries
    if len(kept) < 4:
        kept = sigkill_at(setup, out, "blocks", cancel_first=True)  # a cancel cut short
    assert len(sigterm_at(setup, out, "outputs")) == 4  # the killed runs' leftovers swept
    assert len(sigkill_at(setup, out, "outputs")) == 4
    assert len(sigterm_at(setup, out, "zones")) == 4
    run = complete(setup, out)
    assert run["computed_this_run"] == 0 and run["blocks"]["done"] == 4


def test_a_resume_and_a_restart_stopped_at_each_phase(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "region"
    failing = Run.start(setup, out, "--retries", "0", env=fault_env(die="r000_c001"))
    failing.proc.communicate(timeout=600)
    assert failing.proc.returncode == 1  # its worker died on r000_c001: that block failed
    # a block whose worker died after finishing it is not computed again behind the manifest
    assert set(check_consistent(out)) == BLOCKS - {"r000_c001"}
    assert vrt_sources(out / "landcover.vrt") == {f"blocks/{b}.tif" for b in BLOCKS - {"r000_c001"}}

    # resuming it, stopped before the manifest changes: the earlier outputs stand, whole (or,
    # had the stop come later, are gone with the change)
    assert len(sigterm_at(setup, out, "model")) == 3
    (out / "blocks" / "r001_c001.tif").write_bytes(b"damaged")  # a done block to map again
    # once the manifest has changed (r001_c001 no longer done), no output claims it
    assert set(sigterm_at(setup, out, "cluster")) == BLOCKS - {"r000_c001", "r001_c001"}
    assert not (out / "landcover.vrt").exists() and not (out / "run.json").exists()
    run = complete(setup, out)
    assert run["computed_this_run"] == 2 and run["blocks"]["done"] == 4

    # a restart: once the manifest is reset, nothing of the old region stays
    assert sigterm_at(setup, out, "cluster", "--restart") == {}
    assert not [p.name for p in out.iterdir() if p.is_file() and p.name != "manifest.json"]
    assert json.loads((out / "manifest.json").read_text())["runs"] == 1


# --- the manifest records the run by content, and says what changed ------------------------


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_the_manifest_records_the_mask_by_content_and_a_refusal_names_each_change(
    region_case: RegionCase, tmp_path: Path, capsys
) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    x0, y1 = ORIGIN_XY
    corner = gpd.GeoDataFrame(
        {"name": ["a"]}, geometry=[box(x0 + 5, y1 - 30, x0 + 30, y1 - 5)], crs="EPSG:2154"
    )
    (tmp_path / "first").mkdir()
    corner.to_file(tmp_path / "first" / "area.shp")
    out = tmp_path / "region"

    def region(mask: Path, *extra: str) -> int:
        args = region_case.args(out, "--workers", "1", "--mask", str(mask), *extra)
        return main([*args, "--progress", "none"])

    assert region(tmp_path / "first" / "area.shp") == 0
    m = manifest(out)
    assert [b["state"] for b in m["blocks"].values()].count("done") == 1
    recorded = m["settings"]["mask"]["sha256"]
    assert sorted(recorded) == [".dbf", ".prj", ".shp", ".shx"]
    assert recorded[".dbf"] == file_sha256(tmp_path / "first" / "area.dbf")

    mask = tmp_path / "moved" / "zone.shp"  # the same files elsewhere, under another name
    mask.parent.mkdir()
    for part in (tmp_path / "first").iterdir():
        shutil.copyfile(part, mask.with_suffix(part.suffix))
    assert region(mask) == 0
    assert json.loads((out / "run.json").read_text())["computed_this_run"] == 0  # resumed
    good = (out / "manifest.json").read_text()

    tile = region_case.delivery.rgb_tile(1, 2)
    stat = tile.stat()
    os.utime(tile, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    try:
        capsys.readouterr()
        assert region(mask, "--tile-size", "64") == 1
    finally:
        os.utime(tile, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    err = capsys.readouterr().err
    assert "other settings (changed: inputs, tile_size_px): " in err
    assert f"1 input file(s) changed since the blocks done: {tile} (modified " in err
    assert "--tile-size 64 was 128" in err
    assert "its 1 block(s) done were mapped with the earlier ones" in err
    assert "rerun with --restart to map everything again" in err
    assert (out / "manifest.json").read_text() == good

    corner.assign(name=["b"]).to_file(mask)  # other attributes: another .dbf
    assert region(mask) == 1
    err = capsys.readouterr().err
    assert "other settings (changed: mask): " in err
    assert f"the mask changed: {mask} has other contents (.dbf) than" in err
    assert "mapped with other settings" in err and "--restart" in err

    # manifests of an earlier engine: the mask recorded by its path, or only a hash
    m = json.loads(good)
    m["settings"]["mask"] = str(tmp_path / "first" / "area.shp")
    m["settings_hash"] = settings_hash(m["settings"])
    (out / "manifest.json").write_text(json.dumps(m))
    assert region(mask) == 1
    err = capsys.readouterr().err
    assert f"the mask was recorded by its path ({tmp_path / 'first' / 'area.shp'})" in err
    m = json.loads(good)
    del m["settings"]
    (out / "manifest.json").write_text(json.dumps(m))
    assert region(mask) == 1
    err = capsys.readouterr().err
    assert "recorded only by their hash" in err and "--restart" in err
    for part in (tmp_path / "first").iterdir():  # the mask the hash was made with
        shutil.copyfile(part, mask.with_suffix(part.suffix))
    assert region(mask) == 0  # the same settings: resumed, and recorded in full again
    assert json.loads((out / "run.json").read_text())["computed_this_run"] == 0
    assert manifest(out)["settings"] == json.loads(good)["settings"]
