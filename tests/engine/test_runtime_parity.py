"""OpenVINO against torch for every architecture the registry holds, and the FLAIR-HUB decoder's
export forward against its lean one.

Each case converts a generated checkpoint in its published layout through the runtime layer
(`Predictor(backend="openvino")`, as predict asks for it), and the logits of a random tile must
agree with the torch network's within the check's tolerance (1e-3 of the logit scale).
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
import torch

from engine.inference import Predictor
from engine.models.loader import load_model
from engine.models.upernet040 import UPerNetDecoder040
from tests.engine.runtime_fixtures import CASES
from tests.fixtures.generate import make_orthophoto

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_openvino_agrees_with_torch(case: str, tmp_path: Path) -> None:
    write, tile = CASES[case]
    path = write(tmp_path)
    predictor = Predictor(load_model(str(path), say=lambda *a: None), "cpu", backend="openvino")
    network = predictor.network  # kept here for the reference; the predictor lets it go
    tiles = np.random.default_rng(1).integers(0, 256, (2, len(predictor.card.channels), tile, tile))
    with torch.inference_mode():
        x = predictor.normalize(tiles.astype(np.uint8))
        expected = predictor.architecture.forward(network, x, None).numpy()
    choice = predictor.runtime_for((tile, tile))
    assert choice.runtime == "openvino" and choice.check["passed"], choice
    assert predictor.network is None  # never the torch network and the compiled one together
    got = predictor.logits(tiles.astype(np.uint8))
    assert np.abs(got - expected).max() <= 1e-3 * np.abs(expected).max()
    assert (got.argmax(1) == expected.argmax(1)).mean() > 0.999


def test_upernet_export_forward_equals_the_lean_one_bit_for_bit() -> None:
    torch.manual_seed(0)
    channels = (3, 0, 96, 192, 384, 768)  # ConvNeXt-V2-T's features, the empty H/2 one included
    decoder = UPerNetDecoder040(channels).eval()
    for module in decoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    size = 128
    features = [torch.randn(1, 3, size, size), torch.randn(1, 0, size // 2, size // 2)]
    features += [
        torch.randn(1, c, size // 2**i, size // 2**i) for i, c in enumerate(channels[2:], 2)
    ]
    with torch.inference_mode():
        lean = decoder(*features)
        decoder.export_friendly = True
        plain = decoder(*features)
    assert not torch.equal(lean, torch.zeros_like(lean))
    assert torch.equal(lean, plain)


def _map(ortho: Path, out: Path, model: Path, tile: int, backend: str) -> dict:
    """`engine predict` in its own process; the `done` event."""
    command = [sys.executable, "-m", "engine", "predict", str(ortho), str(out), "--model"]
    command += [str(model), "--tile-size", str(tile), "--margin", "16", "--device", "cpu"]
    command += ["--backend", backend, "--threads", "2", "--progress", "json"]
    done = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "FLAIR_CACHE_DIR": str(out.parent / "cache")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["flairhub-upernet-convnextv2", "flairhub-upernet-swin"])
def test_flairhub_maps_through_openvino_equal_the_maps_through_torch(
    case: str, tmp_path: Path
) -> None:
    write, tile = CASES[case]
    model = write(tmp_path)
    ortho = make_orthophoto(tmp_path / "o.tif", 300, 260, 4, seed=11)
    through_torch = _map(ortho, tmp_path / "torch.tif", model, tile, "torch")
    through_openvino = _map(ortho, tmp_path / "openvino.tif", model, tile, "openvino")
    assert through_torch["run"]["runtime"]["name"] == "torch"
    runtime = through_openvino["run"]["runtime"]  # the done event names what ran
    assert (runtime["name"], runtime["precision"]) == ("openvino", "fp32")
    assert runtime["check"]["passed"]
    with rasterio.open(tmp_path / "torch.tif") as a, rasterio.open(tmp_path / "openvino.tif") as b:
        reference, got = a.read(1), b.read(1)
    assert len(np.unique(reference)) > 2  # a map, not one class
    assert np.array_equal(reference, got), f"{(reference != got).mean():.2%} of pixels differ"
