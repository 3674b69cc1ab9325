"""The conversion cache: a miss then a hit, corrupt and partial entries rebuilt, two processes
converting at once, and a changed checkpoint that never reuses a stale entry.

Real conversions of a small U-Net (64 px tiles, a few seconds each); the mechanics of entries
(atomic write, validation) are also checked on their own with small files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from engine.inference import Predictor
from engine.models.loader import load_model
from engine.runtime import torch_child
from engine.runtime.cache import EntryCache, EntryKey
from tests.engine.recording import Said
from tests.fixtures.generate import make_orthophoto, make_unet_checkpoint

REPO = Path(__file__).resolve().parents[2]
TILE = 64


def key(weights: str = "a" * 64) -> EntryKey:
    return EntryKey(
        "m", weights, "unet", "resnet34", (1, 3, 64, 64), ("R", "G", "B"), 19, "fp32", "v"
    )


def fake_build(folder: Path) -> dict:
    (folder / "model.xml").write_text("<net/>")
    (folder / "model.bin").write_bytes(os.urandom(4096))
    return {"passed": True}


def test_entries_are_whole_or_invalid(tmp_path: Path) -> None:
    cache = EntryCache(tmp_path)
    assert cache.find(key()) is None
    entry = cache.write(key(), fake_build)
    assert cache.find(key()) == entry
    assert not [p for p in cache.folder.iterdir() if p.name.startswith(".tmp")]
    assert cache.find(key("b" * 64)) is None  # another checkpoint: another entry
    data = bytearray((entry.folder / "model.bin").read_bytes())
    data[100] ^= 0xFF  # same size, other content
    (entry.folder / "model.bin").write_bytes(bytes(data))
    assert cache.find(key()) is None
    entry = cache.write(key(), fake_build)  # rebuilt in place
    (entry.folder / "entry.json").unlink()  # a partial entry: its record never written
    assert cache.find(key()) is None
    entry = cache.write(key(), fake_build)
    (entry.folder / "model.bin").write_bytes(b"")  # truncated
    assert cache.find(key()) is None


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    cache = EntryCache(tmp_path)

    def failing(folder: Path) -> dict:
        (folder / "model.xml").write_text("<net/>")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError):
        cache.write(key(), failing)
    assert list(cache.folder.iterdir()) == []


def _predict(ortho: Path, out: Path, ckpt: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "predict", str(ortho), str(out), "--model", str(ckpt)]
        + ["--tile-size", str(TILE), "--margin", "8", "--backend", "openvino"]
        + ["--threads", "1", "--progress", "json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FLAIR_CACHE_DIR": str(out.parent / "cache")},
    )


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_two_processes_convert_once_then_a_hit_converts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = make_unet_checkpoint(tmp_path / "u.pth", 3, 19, seed=21)
    ortho = make_orthophoto(tmp_path / "o.tif", 150, 120, 3, seed=2)
    runs = [_predict(ortho, tmp_path / f"m{i}.tif", ckpt) for i in (1, 2)]
    outs = [p.communicate(timeout=600) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], [o[1][-2000:] for o in outs]
    logs = [[e["message"] for e in _events(o[0]) if e["event"] == "log"] for o in outs]
    converting = [any(m.startswith("converting") for m in lines) for lines in logs]
    assert sorted(converting) == [False, True], logs  # exactly one of them converted
    other = logs[converting.index(False)]
    assert any("converted by the other run" in m or "from the cache" in m for m in other)
    for events in (_events(o[0]) for o in outs):
        runtime = events[-1]["run"]["runtime"]  # the done event names what ran
        assert events[-1]["event"] == "done" and runtime["name"] == "openvino"
        assert runtime["precision"] == "fp32" and runtime["check"]["passed"]
        assert runtime["asked"] == "openvino" and "checked against torch" in runtime["why"]
    with rasterio.open(tmp_path / "m1.tif") as a, rasterio.open(tmp_path / "m2.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))
    entries = [p for p in (tmp_path / "cache" / "openvino").iterdir() if p.is_dir()]
    assert len(entries) == 1

    # a later run loads the entry: no conversion, no torch network kept
    monkeypatch.setenv("FLAIR_CACHE_DIR", str(tmp_path / "cache"))

    def no_conversion(*args: object) -> float:
        raise AssertionError("converted again")

    monkeypatch.setattr(torch_child, "trace", no_conversion)
    said = Said()
    predictor = Predictor(load_model(str(ckpt)), "cpu", backend="openvino", reporter=said)
    assert predictor.runtime_for((TILE, TILE)).cache_entry == str(entries[0])
    assert predictor.network is None
    assert any("loaded from the cache" in line for line in said.lines)


@pytest.mark.slow
def test_corrupt_entry_and_changed_checkpoint_are_converted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLAIR_CACHE_DIR", str(tmp_path / "cache"))
    ckpt = make_unet_checkpoint(tmp_path / "u.pth", 3, 19, seed=22)

    def runtime(said: Said):
        return Predictor(
            load_model(str(ckpt)), "cpu", backend="openvino", reporter=said
        ).runtime_for((TILE, TILE))

    first = Path(runtime(Said()).cache_entry)
    with open(first / "model.bin", "r+b") as f:  # cut short, as a crash mid-copy leaves it
        f.truncate(1000)
    said = Said()
    assert runtime(said).cache_entry == str(first)
    assert any("incomplete or corrupt: converting again" in line for line in said.lines)
    assert any(line.startswith("converting") for line in said.lines)

    make_unet_checkpoint(ckpt, 3, 19, seed=23)  # same path, other weights
    said = Said()
    changed = Path(runtime(said).cache_entry)
    assert changed != first and first.is_dir()
    assert any(line.startswith("converting") for line in said.lines)
    stored = json.loads((changed / "entry.json").read_text())["key"]["weights_sha256"]
    assert stored != json.loads((first / "entry.json").read_text())["key"]["weights_sha256"]
