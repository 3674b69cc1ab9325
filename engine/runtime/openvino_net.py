"""OpenVINO: converting a torch network to IR, compiling it, and checking it against torch.

Conversion traces the network (`openvino.convert_model`), with every module that has an
`export_friendly` attribute switched to its export forward for the trace (the FLAIR-HUB UPerNet
decoder: engine.models.upernet040). A large tile is traced at `TRACE_SIDE_PX` with free height
and width, then the graph is fixed to the run's shape: tracing at 1280 px held the activations
of a whole forward beside the graph (3.1 GB for the U-Net, 3.4 GB for a ConvNeXt-V2 UPerNet;
1.7 and 2.0 GB this way). A network that cannot be traced at another size (timm's Swin is built
for one) is traced at the run's shape. The IR keeps fp32 weights; the precision is a compile
property (`INFERENCE_PRECISION_HINT`), set explicitly because OpenVINO's CPU default is bf16 on
CPUs with AMX.

The check runs the compiled network and torch on one deterministic probe tile. In fp32 the
logits must agree within `FP32_TOLERANCE` of the logit scale (the largest absolute torch logit);
a bf16 entry is gated by the same fp32 check of its graph, and records its own agreement.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import torch

log = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-3  # of the logit scale
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}
# a tile side above which the trace runs on a smaller one (a multiple of every network's stride)
TRACE_SIDE_PX = 256
_core: ov.Core | None = None


def core() -> ov.Core:
    """One OpenVINO Core per process (it loads the CPU plugin once)."""
    global _core
    if _core is None:
        _core = ov.Core()
    return _core


def version() -> str:
    """OpenVINO's version, as the cache key holds it."""
    return ov.get_version()


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


def trace_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape to trace a network for tiles of `shape` (B, C, H, W): each side above twice
    `TRACE_SIDE_PX` that it divides becomes `TRACE_SIDE_PX`; smaller tiles are traced whole."""
    *lead, height, width = shape

    def side(px: int) -> int:
        return TRACE_SIDE_PX if px > 2 * TRACE_SIDE_PX and px % TRACE_SIDE_PX == 0 else px

    return (*lead, side(height), side(width))


def convert(
    network: torch.nn.Module, probe: torch.Tensor, folder: Path, small: bool = True
) -> tuple[float, bool]:
    """Trace `network` and save the IR for `probe`'s shape as `folder/model.xml|bin`.

    `small`: trace at `trace_shape` with free height and width, then fix the shape (see the
    module doc); the caller checks the result and converts again with `small=False` if that
    graph disagrees. A network that refuses the smaller tile is traced at the run's shape.
    Returns the seconds taken and whether the trace ran on a smaller tile."""
    started = time.perf_counter()
    shape = tuple(probe.shape)
    example = trace_shape(shape) if small else shape
    model = None
    traced_small = False
    if example != shape:
        free = (*shape[:2], -1, -1)
        try:
            with torch.no_grad(), export_forward(network):
                model = ov.convert_model(
                    network, example_input=probe[..., : example[2], : example[3]], input=[free]
                )
            model.reshape(list(shape))
            traced_small = True
        except Exception as exc:  # torch or OpenVINO refusing the smaller tile, in their words
            log.info("tracing at %s refused (%s): traced at %s", example[2:], exc, shape[2:])
            model, traced_small = None, False
            release_freed_memory()
    if model is None:
        with torch.no_grad(), export_forward(network):
            model = ov.convert_model(network, example_input=probe, input=[shape])
    ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
    # the graph goes with this frame; the caller trims the heap once torch's network is let go
    return time.perf_counter() - started, traced_small


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc's `malloc_trim`),
    so a conversion's freed buffers do not add to the compiled network's footprint."""
    gc.collect()
    if sys.platform.startswith("linux"):  # another C library (musl) has nothing to trim
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


class OpenVinoNetwork:
    """A compiled IR with the torch network's call: (B, C, H, W) float32 in, logits out.

    The IR has batch 1 (one compiled shape, the fastest on the CPU); a batch runs tile by tile.
    """

    memory_format = torch.contiguous_format  # NCHW, what the IR takes without a copy

    def __init__(self, graph: Path, precision: str, threads: int | None) -> None:
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": OV_PRECISION[precision],
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core().compile_model(core().read_model(str(graph)), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().float().contiguous().numpy()
        outputs = []
        for i in range(array.shape[0]):
            self.request.infer({0: array[i : i + 1]}, share_inputs=True)
            outputs.append(self.request.get_output_tensor(0).data.copy())
        out = outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
        return torch.from_numpy(out)


def probe_tile(channels: int, height: int, width: int) -> np.ndarray:
    """A deterministic raw tile (0..255): smooth gradients plus seeded noise, so every layer
    sees varied values and the same probe is made on every machine."""
    rng = np.random.default_rng(20260419)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    planes = []
    for c in range(channels):
        wave = 0.5 + 0.5 * np.sin(6.0 * (c + 1) * rows + 4.0 * (channels - c) * cols)
        planes.append(200.0 * wave + rng.uniform(0, 55, (height, width)))
    return np.clip(np.stack(planes), 0, 255).astype(np.float32)[None]


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """How far `candidate` logits are from `reference`: max difference, scale, same class."""
    scale = float(np.abs(reference).max())
    return {
        "max_abs_diff": float(np.abs(candidate - reference).max()),
        "logit_scale": scale,
        "same_class_pct": float((candidate.argmax(1) == reference.argmax(1)).mean() * 100),
    }


def check(
    graph: Path,
    reference: np.ndarray,
    probe: torch.Tensor,
    precision: str,
    threads: int | None,
) -> dict[str, Any]:
    """The check stored with an entry: fp32 agreement (the gate) and, for bf16, its own."""
    fp32 = compare(reference, OpenVinoNetwork(graph, "fp32", threads)(probe).numpy())
    tolerance = FP32_TOLERANCE * max(fp32["logit_scale"], 1e-6)
    result: dict[str, Any] = {
        "fp32": fp32,
        "tolerance": tolerance,
        "passed": bool(fp32["max_abs_diff"] <= tolerance),
        "probe_shape": list(probe.shape),
    }
    if precision != "fp32":
        result[precision] = compare(
            reference, OpenVinoNetwork(graph, precision, threads)(probe).numpy()
        )
    return result


def torch_logits(
    forward: Callable[[torch.Tensor], torch.Tensor], probe: torch.Tensor
) -> np.ndarray:
    """The torch network's fp32 logits on the probe, the check's reference."""
    with torch.inference_mode():
        return forward(probe).float().numpy()
