"""A CPU run that may use OpenVINO never imports torch, converting or not.

The card a checkpoint resolved to is remembered beside the converted networks (resolved, the
first time, in a child process, as the conversion is: engine.runtime.torch_child), the device is
chosen without torch where no CUDA driver is present, and the OpenVINO path post-processes in
numpy, with the same numbers as the torch path.
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

from engine.device import choose_device
from engine.inference import Predictor
from engine.models.card import ModelCard
from engine.models.loader import load_model
from engine.models.overrides import CardOverrides
from engine.planning import load_run_model
from engine.runtime.cached_cards import CachedCards
from engine.settings import RunOptions
from tests.engine.recording import Said
from tests.fixtures.generate import make_orthophoto, make_unet_checkpoint

REPO = Path(__file__).resolve().parents[2]

# runs the engine's command line in a fresh interpreter and says whether torch was imported
RUN_AND_TELL = """
import json, sys
from engine.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "torch": "torch" in sys.modules}, f)
"""


def _engine(tmp_path: Path, cache: Path, *args: object) -> dict:
    told = tmp_path / "told.json"
    env = {**os.environ, "FLAIR_CACHE_DIR": str(cache), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("FLAIR_BACKEND", None)  # the default runtime, auto (the suite's default is torch)
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_TELL, told, *(str(a) for a in args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert told.is_file(), done.stderr
    result = json.loads(told.read_text())
    result["events"] = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    return result


@pytest.mark.slow
def test_a_cpu_run_maps_without_torch(tmp_path: Path) -> None:
    ortho = make_orthophoto(tmp_path / "o.tif", 300, 260, 5, seed=8)
    ckpt = make_unet_checkpoint(tmp_path / "w_weights.pth", 5, 19, "flair-inc", seed=6)
    cache = tmp_path / "cache"

    def predict(out: str, *extra: object) -> dict:
        return _engine(
            tmp_path,
            cache,
            "predict",
            ortho,
            tmp_path / out,
            "--model",
            ckpt,
            "--tile-size",
            "256",
            "--margin",
            "32",
            "--threads",
            "2",
            "--progress",
            "json",
            *extra,
        )

    first = predict("a.tif")
    assert first["code"] == 0 and not first["torch"]  # torch builds and traces it in a child
    steps = [e for e in first["events"] if e.get("phase") == "conversion"]
    assert steps and steps[-1]["done"] == steps[-1]["total"] == 3, steps
    second = predict("b.tif")
    assert second["code"] == 0 and not second["torch"]
    assert not any(e.get("phase") == "conversion" for e in second["events"])
    done = next(e for e in second["events"] if e["event"] == "done")
    runtime = done["run"]["runtime"]
    assert runtime["name"] == "openvino" and runtime["check"]["passed"], runtime
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))
    # a card asked for differently (other inactive codes) is resolved again, in a child
    third = predict("c.tif", "--inactive", "15,16,17,19")
    assert third["code"] == 0 and third["torch"] is False
    assert len(list((cache / "cards").glob("*.json"))) == 2


@pytest.fixture
def unet_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, RunOptions]:
    """A U-Net checkpoint without a card, and the options of an `auto` run on the CPU, with a
    cache of the test's own."""
    monkeypatch.setenv("FLAIR_CACHE_DIR", str(tmp_path / "cache"))
    ckpt = make_unet_checkpoint(tmp_path / "w.pth", 5, 19, "flair-inc", seed=6)
    return ckpt, RunOptions(model=str(ckpt), device="cpu", backend="auto")


def test_a_remembered_card_spares_the_network(unet_run: tuple[Path, RunOptions]) -> None:
    ckpt, run = unet_run
    said = Said()
    first = load_run_model(run, said)
    assert first.network is None  # resolved in a child process
    assert any("no model card for w.pth" in line for line in said.lines)
    assert first.card == load_model(ckpt).card
    records = list(CachedCards().folder.glob("*.json"))
    assert len(records) == 1
    again = Said()
    second = load_run_model(run, again)
    assert second.network is None and second.card == first.card
    assert again.lines == said.lines  # what the loader said is said again
    # torch asked for: the network is built, the record is not read
    assert load_run_model(
        RunOptions(model=str(ckpt), device="cpu", backend="torch"), Said()
    ).network
    # a record that cannot be read is ignored and written again
    records[0].write_text("{not json")
    assert load_run_model(run, Said()).card == first.card
    assert ModelCard.from_dict(json.loads(records[0].read_text())["card"]) == first.card
    # another checkpoint under the same name is another request
    make_unet_checkpoint(ckpt, 5, 19, "flair-inc", seed=7)
    other = Said()
    assert load_run_model(run, other).network is None
    assert any("no model card for w.pth" in line for line in other.lines)
    assert len(list(CachedCards().folder.glob("*.json"))) == 2


def test_a_model_loaded_without_its_network_builds_it_for_torch(
    unet_run: tuple[Path, RunOptions],
) -> None:
    ckpt, run = unet_run
    load_run_model(run, Said())
    lazy = load_run_model(run, Said())
    assert lazy.network is None
    tiles = np.random.default_rng(3).integers(0, 256, (1, 5, 64, 64)).astype(np.uint8)
    built = Predictor(lazy, "cpu", backend="torch").predict(tiles).codes
    full = Predictor(load_model(str(ckpt), say=lambda m: None), "cpu", backend="torch")
    assert np.array_equal(built, full.predict(tiles).codes)


def test_the_cpu_is_chosen_without_torch_where_no_cuda_driver_is() -> None:
    code = (
        "import sys; from engine.device import choose_device; c = choose_device('auto'); "
        "print(c.device, c.precision, 'torch' in sys.modules)"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.stdout.split() == ["cpu", "fp32", "False"], done.stderr


def test_a_cuda_driver_lets_torch_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: torch picks it")
    monkeypatch.setattr("engine.device.cuda_driver_present", lambda: True)
    choice = choose_device("auto", "auto")
    assert choice.device == "cpu" and "no CUDA device visible to torch" in choice.reason
    assert choose_device("cpu", "bf16").autocast_dtype is torch.bfloat16


@pytest.mark.parametrize("normalization", ["flair-inc", "unit"])
def test_numpy_normalisation_is_torch_formula_bit_for_bit(
    tmp_path: Path, normalization: str
) -> None:
    ckpt = make_unet_checkpoint(tmp_path / "w.pth", 5, 19, "flair-inc", seed=6)
    loaded = load_model(str(ckpt), overrides=CardOverrides(normalization=normalization))
    predictor = Predictor(loaded, "cpu")
    raw = np.random.default_rng(5).integers(0, 256, (2, 5, 33, 47)).astype(np.uint8)
    norm = loaded.card.normalization
    x = torch.from_numpy(raw).to(torch.float32)
    if norm.divisor != 1.0:
        x = x / float(norm.divisor)
    n = len(loaded.card.channels)
    mean = torch.tensor(norm.mean or (0.0,) * n, dtype=torch.float32).view(1, n, 1, 1)
    std = torch.tensor(norm.std or (1.0,) * n, dtype=torch.float32).view(1, n, 1, 1)
    expected = ((x - mean) / std).numpy()
    assert np.array_equal(predictor.normalized_array(raw), expected)


def test_numpy_results_equal_torch_results(tmp_path: Path) -> None:
    ckpt = make_unet_checkpoint(tmp_path / "w.pth", 5, 19, "flair-inc", seed=6)
    loaded = load_model(str(ckpt), overrides=CardOverrides(inactive_codes=(15, 16, 17, 19)))
    predictor = Predictor(loaded, "cpu")
    logits = np.random.default_rng(9).normal(0, 3, (2, 19, 40, 50)).astype(np.float32)
    ours = predictor._from_array(logits.copy(), True, True)
    theirs = predictor._from_tensor(torch.from_numpy(logits.copy()), True, True)
    assert np.array_equal(ours.codes, theirs.codes)
    assert not set(np.unique(ours.codes)) & {15, 16, 17, 19}
    # softmax in numpy and in torch may differ in the last bit: a percent may round apart
    assert np.abs(ours.confidence.astype(int) - theirs.confidence).max() <= 1
    assert (ours.confidence == theirs.confidence).mean() > 0.999
    assert np.abs(ours.probabilities.astype(int) - theirs.probabilities).max() <= 1
    assert (ours.probabilities == theirs.probabilities).mean() > 0.999
