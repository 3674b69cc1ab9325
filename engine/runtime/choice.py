"""Which runtime runs a network, at which precision, and why: the rules before any conversion.

`auto` means OpenVINO on the CPU (where the converted network passes its check against torch,
decided later in `engine.runtime.network`) and torch on CUDA. An explicit choice that cannot be
honoured is an error that says why, never a silent fallback.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from engine.cli_values import BACKENDS  # auto, torch, openvino
from engine.errors import InvalidInput
from engine.runtime.cpu_features import CpuFeatures

BACKEND_OPTION = "--backend"
BACKEND_ENV = "FLAIR_BACKEND"  # the default of --backend where it is not given (auto)


@dataclass(frozen=True)
class RuntimeChoice:
    """The runtime a run uses: what the log says and the `done` event's `runtime` record.

    Attributes:
        runtime: "torch" or "openvino".
        precision: "fp32", "bf16" or "fp16".
        device: "cpu", "cuda:0", ...
        reason: why, in words ("auto: CPU, converted network passed its check").
        asked: the `--backend` value the user gave.
        cache_entry: the converted network's folder (OpenVINO), else None.
        check: the stored check against torch (OpenVINO): max_abs_diff, logit_scale, ...
    """

    runtime: str
    precision: str
    device: str
    reason: str
    asked: str = "auto"
    cache_entry: str | None = None
    check: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (the `done` event's `runtime`, protocol's `run.runtime`)."""
        return asdict(self)

    def describe(self) -> str:
        """One log line."""
        return f"runtime {self.runtime} {self.precision} on {self.device}: {self.reason}"

    def but(self, **changes: Any) -> RuntimeChoice:
        """A copy with fields changed (the fallback to torch, the entry found)."""
        return replace(self, **changes)


def check_backend(backend: str | None) -> str:
    """`auto|torch|openvino`, normalised; None is `$FLAIR_BACKEND`, else auto. Anything else
    is refused naming the choices."""
    given = backend if backend is not None else os.environ.get(BACKEND_ENV) or "auto"
    value = given.strip().lower()
    if value not in BACKENDS:
        where = (
            BACKEND_OPTION if backend is not None else f"{BACKEND_ENV} (default {BACKEND_OPTION})"
        )
        raise InvalidInput(
            f"{where} {given!r} is not one of {', '.join(BACKENDS)}",
            option=BACKEND_OPTION,
            value=given,
        )
    return value


def plan_runtime(
    backend: str | None,
    device: str,
    precision: str,
    single_input: bool,
    cpu: CpuFeatures,
    openvino_version: str | None,
) -> RuntimeChoice:
    """The runtime to try, before any conversion.

    Args:
        backend: `--backend` (auto, torch, openvino).
        device: the torch device chosen ("cpu", "cuda:0").
        precision: the precision chosen for that device (fp32, bf16, fp16).
        single_input: False for networks that take more than the tile (U-T&T's Sentinel-2
            series): OpenVINO is tried on single-input networks only.
        cpu: the CPU's features (bf16 needs AMX or AVX512_BF16).
        openvino_version: None when OpenVINO cannot be imported.
    """
    backend = check_backend(backend)
    on_cpu = device == "cpu"
    if on_cpu and precision == "bf16" and (refusal := cpu.bf16_refusal()):
        raise InvalidInput(refusal, option="--precision", value="bf16")
    if backend == "torch":
        return RuntimeChoice("torch", precision, device, "PyTorch asked for", backend)
    why_not = None
    if not on_cpu:
        why_not = f"OpenVINO runs on the CPU only here, and the device is {device}"
    elif not single_input:
        why_not = (
            "this network takes a Sentinel-2 series besides the tile; OpenVINO runs "
            "single-input networks only"
        )
    elif openvino_version is None:
        why_not = "OpenVINO is not installed in the engine's environment (reinstall the engine)"
    if why_not is None:
        why = "OpenVINO asked for" if backend == "openvino" else "auto: OpenVINO on the CPU"
        return RuntimeChoice("openvino", precision, device, why, backend)
    if backend == "openvino":
        raise InvalidInput(
            f"{BACKEND_OPTION} openvino: {why_not}; use {BACKEND_OPTION} auto or torch",
            option=BACKEND_OPTION,
            value=backend,
        )
    return RuntimeChoice("torch", precision, device, f"auto: {why_not}", backend)
