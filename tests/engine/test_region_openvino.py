"""`region --backend openvino`: the coordinator converts the network once, in the run's log,
and its workers load the converted network from the cache; the region's map equals one
`predict --backend openvino` of the mosaic, pixel for pixel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from tests.fixtures.bdortho import TILE_ARGS, RegionCase, read_map

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.slow
def test_region_through_openvino_equals_predict_through_openvino(
    region_case: RegionCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("FLAIR_CACHE_DIR", str(tmp_path / "cache"))  # this test converts
    out = tmp_path / "region"
    args = region_case.args(out, "--workers", "1", "--backend", "openvino", "--progress", "json")
    assert main(args) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert sum(m.startswith("converting ") for m in logs) == 1, logs
    runtime = events[-1]["run"]["runtime"]
    assert events[-1]["event"] == "done" and runtime["name"] == "openvino", runtime
    assert runtime["check"]["passed"]
    entries = [p for p in (tmp_path / "cache" / "openvino").iterdir() if p.is_dir()]
    assert len(entries) == 1  # the workers loaded the coordinator's conversion

    mosaic = out / "inputs" / "mosaic.vrt"
    assert mosaic.is_file(), sorted(p.name for p in (out / "inputs").iterdir())
    alone = tmp_path / "predict.tif"
    predict = ["predict", str(mosaic), str(alone), "--model", str(region_case.checkpoint)]
    assert main([*predict, *TILE_ARGS[:4], "--threads", "1", "--backend", "openvino"]) == 0
    capsys.readouterr()
    mapped = read_map(out / "landcover.vrt")
    assert np.array_equal(mapped, read_map(alone))
    assert (mapped == region_case.reference).mean() > 0.999  # torch's map, but near-ties
