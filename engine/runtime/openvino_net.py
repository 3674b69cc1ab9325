"""OpenVINO without torch: compiling a converted network, running it, checking it.

A run whose converted network is cached needs only this module (numpy in, numpy out); the
conversion itself, which traces the torch network, is `engine.runtime.conversion`. The IR keeps
fp32 weights; the precision is a compile property (`INFERENCE_PRECISION_HINT`), set explicitly
because OpenVINO's CPU default is bf16 on CPUs with AMX.

The check runs the compiled network on one deterministic probe tile against torch's logits
(computed by the conversion). In fp32 the logits must agree within `FP32_TOLERANCE` of the
logit scale (the largest absolute torch logit); a bf16 entry is gated by the same fp32 check of
its graph, and records its own agreement.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

log = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-3  # of the logit scale
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}
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


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc's `malloc_trim`),
    so a conversion's freed buffers do not add to the compiled network's footprint."""
    gc.collect()
    if sys.platform.startswith("linux"):  # another C library (musl) has nothing to trim
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


class OpenVinoNetwork:
    """A compiled IR called like a network: (B, C, H, W) float32 array in, logits array out.

    The IR has batch 1 (one compiled shape, the fastest on the CPU); a batch runs tile by tile
    into one preallocated output.
    """

    def __init__(self, graph: Path, precision: str, threads: int | None) -> None:
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": OV_PRECISION[precision],
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core().compile_model(core().read_model(str(graph)), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        tiles = np.ascontiguousarray(x, dtype=np.float32)  # NCHW, what the IR takes
        out: np.ndarray | None = None
        for i in range(tiles.shape[0]):
            self.request.infer({0: tiles[i : i + 1]}, share_inputs=True)
            logits = self.request.get_output_tensor(0).data  # the request's reused buffer
            if out is None:
                out = np.empty((tiles.shape[0], *logits.shape[1:]), np.float32)
            out[i] = logits[0]
        assert out is not None, "an empty batch"
        return out


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
    probe: np.ndarray,
    precision: str,
    threads: int | None,
) -> dict[str, Any]:
    """The check stored with an entry: fp32 agreement (the gate) and, for bf16, its own."""
    fp32 = compare(reference, OpenVinoNetwork(graph, "fp32", threads)(probe))
    tolerance = FP32_TOLERANCE * max(fp32["logit_scale"], 1e-6)
    result: dict[str, Any] = {
        "fp32": fp32,
        "tolerance": tolerance,
        "passed": bool(fp32["max_abs_diff"] <= tolerance),
        "probe_shape": list(probe.shape),
    }
    if precision != "fp32":
        result[precision] = compare(reference, OpenVinoNetwork(graph, precision, threads)(probe))
    return result
