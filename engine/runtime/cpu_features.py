"""What the CPU does natively, read once from the operating system.

bf16 is fast on CPUs with AMX (`amx_bf16`) or AVX512_BF16 (`avx512_bf16`); elsewhere OpenVINO
emulates it and runs slower than fp32, so the engine refuses it there rather than run slowly.
Linux names the flags in /proc/cpuinfo; elsewhere OpenVINO's own report of the CPU stands in.
The parsing takes the text as an argument, so tests give stand-in flag sets for both cases.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# flag -> the name a user finds in their CPU's specification
BF16_FLAGS = {"amx_bf16": "AMX", "avx512_bf16": "AVX512_BF16"}


@dataclass(frozen=True)
class CpuFeatures:
    """The CPU's model name and feature flags (lower case, as Linux names them)."""

    model: str
    flags: frozenset[str]

    @property
    def native_bf16(self) -> str | None:
        """The feature that makes bf16 native here (AMX first), or None."""
        for flag, name in BF16_FLAGS.items():
            if flag in self.flags:
                return name
        return None

    def bf16_refusal(self) -> str | None:
        """Why bf16 is refused on this CPU, in one line; None when it runs natively."""
        if self.native_bf16:
            return None
        return (
            f"--precision bf16 needs a CPU with AMX or AVX512_BF16 ({' or '.join(BF16_FLAGS)} "
            f"in the CPU flags); {self.model or 'this CPU'} has neither, so bf16 would be "
            "emulated and slower than fp32: use --precision fp32 (or auto)"
        )


def parse_cpuinfo(text: str) -> CpuFeatures:
    """The model name and flags of /proc/cpuinfo's text (the first processor's)."""
    model, flags = "", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.lower().split())
    return CpuFeatures(model, flags)


def read_cpu_features() -> CpuFeatures:
    """This machine's CPU: /proc/cpuinfo on Linux, OpenVINO's capabilities elsewhere."""
    try:
        return parse_cpuinfo(CPUINFO.read_text(errors="replace"))
    except OSError:
        pass
    flags: set[str] = set()
    try:  # macOS, Windows: OpenVINO reports BF16 where the CPU has it natively
        import openvino as ov

        if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            flags.add("avx512_bf16")
    except (ImportError, RuntimeError):  # no OpenVINO: no native bf16 known, fp32 stays
        pass
    return CpuFeatures(platform.processor(), frozenset(flags))
