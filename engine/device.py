"""Choosing the compute device and the numeric precision, and saying why."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.errors import DeviceError, InvalidInput

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class DeviceChoice:
    """The device to run on, the autocast dtype (None = fp32) and the reason, for the log."""

    device: torch.device
    autocast_dtype: torch.dtype | None
    reason: str

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]


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
    cuda_ok = torch.cuda.is_available()
    if spec == "auto":
        if cuda_ok:
            device = torch.device("cuda", torch.cuda.current_device())
            reason = f"auto: CUDA device {torch.cuda.get_device_name(device)}"
        else:
            device = torch.device("cpu")
            reason = "auto: no CUDA device visible to torch, using the CPU"
    elif spec == "cpu":
        device, reason = torch.device("cpu"), "CPU requested"
    elif spec == "cuda" or spec.startswith("cuda:"):
        if not cuda_ok:
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
        device = torch.device("cuda", index)
        reason = f"CUDA requested: {torch.cuda.get_device_name(device)}"
    else:
        raise InvalidInput(
            f"device {spec!r} is not one of auto, cpu, cuda, cuda:N", option="--device"
        )
    dtype: torch.dtype | None
    if precision == "fp32" or (precision == "auto" and device.type == "cpu"):
        dtype = None
    elif precision == "auto":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        if device.type == "cpu" and dtype is torch.float16:
            raise InvalidInput(
                "fp16 is not supported on the CPU; use bf16 or fp32", option="--precision"
            )
    return DeviceChoice(device=device, autocast_dtype=dtype, reason=reason)
