"""Converting a torch network to OpenVINO IR: the one part of the runtime that needs torch.

Conversion traces the network (`openvino.convert_model`), with every module that has an
`export_friendly` attribute switched to its export forward for the trace (the FLAIR-HUB UPerNet
decoder: engine.models.upernet040). A large tile is traced at `TRACE_SIDE_PX` with free height
and width, then the graph is fixed to the run's shape: tracing at 1280 px held the activations
of a whole forward beside the graph (3.1 GB for the U-Net, 3.4 GB for a ConvNeXt-V2 UPerNet;
1.7 and 2.0 GB this way). A network that cannot be traced at another size (timm's Swin is built
for one) is traced at the run's shape.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import openvino as ov
import torch
from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

from engine.models.architectures import Architecture
from engine.runtime.openvino_net import release_freed_memory

log = logging.getLogger(__name__)

# a tile side above which the trace runs on a smaller one (a multiple of every network's stride)
TRACE_SIDE_PX = 256


class TracedForward(torch.nn.Module):
    """The architecture's forward (tile in, the map's logits out) as one module to trace."""

    def __init__(self, network: torch.nn.Module, architecture: Architecture) -> None:
        super().__init__()
        self.network = network
        self._forward = architecture.forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(self.network, x, None)


@contextmanager
def export_forward(network: torch.nn.Module) -> Iterator[None]:
    """Switch modules that have an export forward to it while the network is traced."""
    switched = [m for m in network.modules() if hasattr(m, "export_friendly")]
    for module in switched:
        module.export_friendly = True
    try:
        yield
    finally:
        for module in switched:
            module.export_friendly = False


@contextmanager
def quiet_trace() -> Iterator[None]:
    """No gradients, and torch's tracer warnings kept out of the run's log: they say a Python
    value became a constant of the graph (shapes, checks), which the probe check covers, and
    that `torch.jit.trace` is deprecated, which OpenVINO's converter calls, not the engine."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        yield


def trace_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape to trace a network for tiles of `shape` (B, C, H, W): each side above twice
    `TRACE_SIDE_PX` that it divides becomes `TRACE_SIDE_PX`; smaller tiles are traced whole."""
    *lead, height, width = shape

    def side(px: int) -> int:
        return TRACE_SIDE_PX if px > 2 * TRACE_SIDE_PX and px % TRACE_SIDE_PX == 0 else px

    return (*lead, side(height), side(width))


def to_openvino(
    network: torch.nn.Module, example: torch.Tensor, shape: tuple[int, ...]
) -> ov.Model:
    """The network traced on `example` and converted, its input declared as `shape` (-1: free).

    torch's own check of the trace (`check_trace`, which traces again and runs both forwards
    to compare them) is left out: the probe check compares the compiled graph with torch
    anyway, and that second trace cost a Swin-B UPerNet at 1024 px a minute and a GB."""
    with quiet_trace(), export_forward(network):
        decoder = TorchScriptPythonDecoder(  # OpenVINO's tracer, given torch's trace options
            network, example_input=example, trace_kwargs={"check_trace": False}
        )
        return ov.convert_model(decoder, input=[shape])


def convert(
    network: torch.nn.Module, probe: np.ndarray, folder: Path, small: bool = True
) -> tuple[float, bool]:
    """Trace `network` and save the IR for `probe`'s shape as `folder/model.xml|bin`.

    `small`: trace at `trace_shape` with free height and width, then fix the shape (see the
    module doc); the caller checks the result and converts again with `small=False` if that
    graph disagrees. A network that refuses the smaller tile is traced at the run's shape.
    Returns the seconds taken and whether the trace ran on a smaller tile."""
    started = time.perf_counter()
    tensor = torch.from_numpy(probe)
    shape = tuple(probe.shape)
    example = trace_shape(shape) if small else shape
    model = None
    traced_small = False
    if example != shape:
        free = (*shape[:2], -1, -1)
        try:
            model = to_openvino(network, tensor[..., : example[2], : example[3]], free)
            model.reshape(list(shape))
            traced_small = True
        except Exception as exc:  # torch or OpenVINO refusing the smaller tile, in their words
            log.info("tracing at %s refused (%s): traced at %s", example[2:], exc, shape[2:])
            model, traced_small = None, False
            release_freed_memory()
    if model is None:
        model = to_openvino(network, tensor, shape)
    ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
    # the graph goes with this frame; the caller trims the heap once torch's network is let go
    return time.perf_counter() - started, traced_small


def trace_network(
    network: torch.nn.Module,
    architecture: Architecture,
    probe: np.ndarray,
    folder: Path,
    small: bool,
    keep_reference: Callable[[np.ndarray], None] | None,
) -> tuple[float, bool]:
    """The conversion's torch side, wherever it runs (engine.runtime.torch_child): torch's
    logits on the probe given to `keep_reference` (None: not needed), then `convert`. The
    logits come first, before OpenVINO's converter is loaded, and a child writes them to disk
    and lets them go before the trace (a ConvNeXt-V2-B's child peaked 90 MB lower, a Swin-B's
    80 MB). Returns the seconds the conversion took and whether it traced a smaller tile."""
    traced = TracedForward(network, architecture).eval()
    if keep_reference is not None:
        keep_reference(torch_logits(traced, probe))
    return convert(traced, probe, folder, small=small)


def torch_logits(forward: Callable[[torch.Tensor], torch.Tensor], probe: np.ndarray) -> np.ndarray:
    """The torch network's fp32 logits on the probe, the check's reference."""
    with torch.inference_mode():
        return forward(torch.from_numpy(probe)).float().numpy()
