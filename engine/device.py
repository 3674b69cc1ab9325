"""Choosing the compute device and the numeric precision, and saying why.

torch is imported only where CUDA may be present (its driver library loads) or is asked for:
a run on the CPU whose converted network is cached (OpenVINO) never imports it, which saves
seconds of start-up and the memory torch's libraries take.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.errors import DeviceError, InvalidInput

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# the CUDA driver's library by platform: without it no CUDA build of torch sees a GPU
CUDA_DRIVER_LIBRARY = {"linux": "libcuda.so.1", "win32": "nvcuda.dll"}


@dataclass(frozen=True)
class DeviceChoice:
    """The device to run on ("cpu", "cuda:0"), its precision and the reason, for the log."""

    device: str
    precision: str  # fp32, bf16 or fp16
    reason: str

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def torch_device(self) -> torch.device:
        """The device as torch names it (imports torch)."""
        import torch

        return torch.device(self.device)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """torch's autocast dtype, None for fp32 (imports torch)."""
        import torch

        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]


def cuda_driver_present() -> bool:
    """Whether a CUDA driver could serve torch: its library loads and CUDA_VISIBLE_DEVICES does
    not hide every GPU. False means torch would see no GPU either, so torch need not load."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    library = CUDA_DRIVER_LIBRARY.get(sys.platform)
    if library is None:  # macOS: no CUDA
        return False
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def choose_device(spec: str = "auto", precision: str = "auto") -> DeviceChoice:
    """Resolve `auto|cpu|cuda|cuda:N` and `auto|fp32|bf16|fp16`.

    auto picks CUDA when torch sees a GPU; an explicit CUDA request without one is an error, not
    a silent fallback. On CUDA `auto` precision is bf16 where supported, else fp16; on CPU it is
    fp32 (bf16 on CPU is opt-in, its agreement with fp32 is measured in the README).
    """
    spec = spec.strip().lower()
    if precision not in PRECISIONS:
        raise InvalidInput(
            f"precision {precision!r} is not one of {', '.join(PRECISIONS)}", option="--precision"
        )
    if spec == "cpu":
        device, reason = "cpu", "CPU requested"
    elif spec == "auto" and not cuda_driver_present():
        device, reason = "cpu", "auto: no CUDA driver on this machine, using the CPU"
    elif spec == "auto":
        device, reason = _auto_with_torch()
    elif spec == "cuda" or spec.startswith("cuda:"):
        device, reason = _cuda_requested(spec)
    else:
        raise InvalidInput(
            f"device {spec!r} is not one of auto, cpu, cuda, cuda:N", option="--device"
        )
    if device == "cpu":
        if precision == "fp16":
            raise InvalidInput(
                "fp16 is not supported on the CPU; use bf16 or fp32", option="--precision"
            )
        chosen = "bf16" if precision == "bf16" else "fp32"
    elif precision == "auto":
        import torch

        chosen = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    else:
        chosen = precision
    return DeviceChoice(device=device, precision=chosen, reason=reason)


def _auto_with_torch() -> tuple[str, str]:
    """`auto` where a CUDA driver is present: torch says whether it sees a GPU."""
    import torch

    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        return f"cuda:{index}", f"auto: CUDA device {torch.cuda.get_device_name(index)}"
    return "cpu", "auto: no CUDA device visible to torch, using the CPU"


def _cuda_requested(spec: str) -> tuple[str, str]:
    """`cuda` or `cuda:N`, checked against what torch sees."""
    import torch

    if not torch.cuda.is_available():
        raise DeviceError(
            f"device {spec!r} was requested but torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
            "use --device cpu or auto, or install a CUDA build of torch",
            option="--device",
        )
    index = int(spec.split(":", 1)[1]) if ":" in spec else torch.cuda.current_device()
    if not 0 <= index < torch.cuda.device_count():
        raise DeviceError(
            f"device {spec!r} does not exist: {torch.cuda.device_count()} CUDA device(s)",
            option="--device",
        )
    return f"cuda:{index}", f"CUDA requested: {torch.cuda.get_device_name(index)}"
