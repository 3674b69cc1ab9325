"""How a network is traced for OpenVINO: a large tile on a smaller one with free height and
width, then fixed to the run's shape (the trace's activations at 1280 px cost 1.4 GB); a network
built for one size traced at the run's own; a smaller trace that disagrees converted again.

The tile sizes are scaled down (`TRACE_SIDE_PX` patched to a quarter of the tile) so that each
case converts in seconds; the rule is the same at the defaults (256 for 1024 and 1280 px).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from engine.inference import Predictor
from engine.models.loader import load_model
from engine.runtime import conversion, torch_child
from tests.engine.recording import Said
from tests.engine.runtime_fixtures import CASES
from tests.fixtures.generate import make_unet_checkpoint


def test_trace_shape_keeps_small_tiles_whole() -> None:
    side = conversion.TRACE_SIDE_PX
    assert conversion.trace_shape((1, 5, 1280, 1280)) == (1, 5, side, side)
    assert conversion.trace_shape((1, 3, 1024, 512)) == (1, 3, side, 512)
    assert conversion.trace_shape((1, 3, 512, 512)) == (1, 3, 512, 512)
    assert conversion.trace_shape((1, 3, 1000, 1000)) == (1, 3, 1000, 1000)  # not a multiple


class Traces:
    """Records the example shape of every trace (`conversion.to_openvino`), then makes it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.shapes: list[tuple[int, ...]] = []
        real = conversion.to_openvino

        def recorded(network, example, shape):
            self.shapes.append(tuple(example.shape))
            return real(network, example, shape)

        monkeypatch.setattr(conversion, "to_openvino", recorded)


def _converted(
    path: Path, tile: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Predictor, np.ndarray, np.ndarray, Said]:
    """Convert `path` for `tile` px tiles into a fresh cache; the torch and OpenVINO logits of
    two random tiles, and what the run said. It converts in this process, where the tests'
    patches of `engine.runtime.conversion` reach."""
    monkeypatch.setattr(torch_child, "SEPARATE_PROCESS", False)
    monkeypatch.setenv("FLAIR_CACHE_DIR", str(tmp_path / "cache"))
    said = Said()
    predictor = Predictor(
        load_model(str(path), say=lambda *a: None), "cpu", backend="openvino", reporter=said
    )
    network = predictor.network
    channels = len(predictor.card.channels)
    tiles = np.random.default_rng(2).integers(0, 256, (2, channels, tile, tile)).astype(np.uint8)
    with torch.inference_mode():
        expected = predictor.architecture.forward(network, predictor.normalize(tiles), None)
    choice = predictor.runtime_for((tile, tile))
    assert choice.runtime == "openvino" and choice.check["passed"], choice
    return predictor, expected.numpy(), predictor.logits(tiles), said


def _graph_shape(predictor: Predictor, tile: int) -> list[int]:
    entry = Path(predictor.runtime_for((tile, tile)).cache_entry)
    return list(ov.Core().read_model(str(entry / "model.xml")).inputs[0].shape)


@pytest.mark.slow
def test_a_large_tile_is_traced_small_then_fixed_to_its_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversion, "TRACE_SIDE_PX", 64)
    traces = Traces(monkeypatch)
    path = make_unet_checkpoint(tmp_path / "unet.pth", 5, 19, "flair-inc", seed=3)
    predictor, expected, got, _ = _converted(path, 256, monkeypatch, tmp_path)
    assert traces.shapes == [(1, 5, 64, 64)]
    assert _graph_shape(predictor, 256) == [1, 5, 256, 256]
    assert np.abs(got - expected).max() <= 1e-3 * np.abs(expected).max()
    assert predictor.network is None  # let go before the check compiled the graph


@pytest.mark.slow
def test_a_network_built_for_one_size_is_traced_at_the_runs_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """timm's Swin takes only the size it was built for: the smaller trace is refused and the
    network is traced at the run's shape, which passes the check."""
    write, tile = CASES["flairhub-upernet-swin"]
    monkeypatch.setattr(conversion, "TRACE_SIDE_PX", tile // 4)
    traces = Traces(monkeypatch)
    predictor, expected, got, _ = _converted(write(tmp_path), tile, monkeypatch, tmp_path)
    assert traces.shapes == [(1, 3, tile // 4, tile // 4), (1, 3, tile, tile)]
    assert _graph_shape(predictor, tile) == [1, 3, tile, tile]
    assert np.abs(got - expected).max() <= 1e-3 * np.abs(expected).max()


@pytest.mark.slow
def test_a_smaller_trace_that_disagrees_is_converted_again_at_the_runs_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The smaller trace writes a real but wrong graph (another U-Net's weights): the check
    catches it, the run says so and converts again at the run's shape, and that graph is used."""
    monkeypatch.setattr(conversion, "TRACE_SIDE_PX", 64)
    path = make_unet_checkpoint(tmp_path / "unet.pth", 5, 19, "flair-inc", seed=3)
    other = load_model(
        str(make_unet_checkpoint(tmp_path / "other.pth", 5, 19, "flair-inc", seed=4)),
        say=lambda *a: None,
    )
    real = conversion.convert
    calls: list[bool] = []

    def small_trace_wrong(network, probe, folder, small=True) -> tuple[float, bool]:
        calls.append(small)
        if not small:
            return real(network, probe, folder, small=small)
        own, network.network = network.network, other.network  # another network traced
        try:
            return real(network, probe, folder, small=small)
        finally:
            network.network = own

    monkeypatch.setattr(conversion, "convert", small_trace_wrong)
    predictor, expected, got, said = _converted(path, 256, monkeypatch, tmp_path)
    assert calls == [True, False]
    assert any("traced at a smaller tile disagrees with torch" in line for line in said.lines)
    assert np.abs(got - expected).max() <= 1e-3 * np.abs(expected).max()
