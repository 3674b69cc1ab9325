"""Which runtime runs, and why: the CPU's bf16 features read from stand-in /proc/cpuinfo texts,
bf16 refused where the CPU lacks them, and a converted network that disagrees with torch never
used (auto falls back to torch in one log line, `--backend openvino` stops).

The wrong graph is a real one: the FLAIR-HUB UPerNet traced through its lean decoder forward
(in-place writes into a preallocated concatenation), which OpenVINO converts without an error
and computes something else. The engine traces the export forward instead; the test switches
that off.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import InvalidInput, RuntimeCheckFailed
from engine.inference import Predictor
from engine.models.loader import load_model
from engine.runtime import conversion, torch_child
from engine.runtime.choice import check_backend, plan_runtime
from engine.runtime.cpu_features import parse_cpuinfo, read_cpu_features
from tests.engine.recording import Said
from tests.engine.runtime_fixtures import CASES
from tests.fixtures.generate import make_orthophoto, make_unet_checkpoint

REPO = Path(__file__).resolve().parents[2]

# Two processors' worth of /proc/cpuinfo, cut to the lines the engine reads (and a few more).
EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi2 sha_ni
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi2 sha_ni
"""
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
"""
COOPER_LAKE = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8380HL CPU @ 2.90GHz
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_vnni
"""


def test_cpu_features_from_cpuinfo_text() -> None:
    epyc = parse_cpuinfo(EPYC)
    assert epyc.model == "AMD EPYC 7B13" and "avx2" in epyc.flags
    assert epyc.native_bf16 is None
    assert parse_cpuinfo(SAPPHIRE_RAPIDS).native_bf16 == "AMX"
    assert parse_cpuinfo(COOPER_LAKE).native_bf16 == "AVX512_BF16"
    assert read_cpu_features().flags  # this machine's own, read the same way


def test_bf16_refused_without_amx_or_avx512_bf16_in_one_line() -> None:
    with pytest.raises(InvalidInput) as refused:
        plan_runtime("auto", "cpu", "bf16", True, parse_cpuinfo(EPYC), "2026.4.1")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("--precision bf16 needs a CPU with AMX or AVX512_BF16")
    assert "AMD EPYC 7B13 has neither" in message and "--precision fp32" in message
    assert refused.value.fields["option"] == "--precision"
    for text in (SAPPHIRE_RAPIDS, COOPER_LAKE):
        choice = plan_runtime("auto", "cpu", "bf16", True, parse_cpuinfo(text), "2026.4.1")
        assert (choice.runtime, choice.precision) == ("openvino", "bf16")


def test_backend_rules() -> None:
    cpu = parse_cpuinfo(EPYC)
    assert plan_runtime("auto", "cpu", "fp32", True, cpu, "v").runtime == "openvino"
    assert plan_runtime("torch", "cpu", "fp32", True, cpu, "v").runtime == "torch"
    on_cuda = plan_runtime("auto", "cuda:0", "bf16", True, cpu, "v")
    assert on_cuda.runtime == "torch" and "cuda:0" in on_cuda.reason
    utt = plan_runtime("auto", "cpu", "fp32", False, cpu, "v")  # U-T&T: tile plus a series
    assert utt.runtime == "torch" and "Sentinel-2 series" in utt.reason
    with pytest.raises(InvalidInput, match="--backend openvino: OpenVINO is not installed"):
        plan_runtime("openvino", "cpu", "fp32", True, cpu, None)
    with pytest.raises(InvalidInput, match="'onnx' is not one of auto, torch, openvino"):
        check_backend("onnx")


@pytest.mark.skipif(
    read_cpu_features().native_bf16 is not None, reason="this CPU runs bf16 natively"
)
def test_predict_refuses_bf16_on_this_cpu(tmp_path: Path) -> None:
    ckpt = make_unet_checkpoint(tmp_path / "u.pth", 3, 19, seed=4)
    ortho = make_orthophoto(tmp_path / "o.tif", 80, 80, 3, seed=4)
    command = [sys.executable, "-m", "engine", "predict", str(ortho), str(tmp_path / "m.tif")]
    command += ["--model", str(ckpt), "--tile-size", "64", "--margin", "8", "--precision", "bf16"]
    done = subprocess.run(
        [*command, "--progress", "json"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    events = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    error = next(e for e in events if e["event"] == "error")
    assert "--precision bf16 needs a CPU with AMX or AVX512_BF16" in error["message"]
    assert not (tmp_path / "m.tif").exists()


@pytest.fixture
def wrong_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trace the UPerNet's lean decoder forward, which OpenVINO gets wrong (converting in this
    process, which the patch reaches)."""
    monkeypatch.setattr(torch_child, "SEPARATE_PROCESS", False)
    monkeypatch.setattr(conversion, "export_forward", lambda network: contextlib.nullcontext())


@pytest.mark.slow
def test_a_network_that_fails_its_check_is_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrong_graph: None
) -> None:
    monkeypatch.setenv("FLAIR_CACHE_DIR", str(tmp_path / "cache"))
    write, tile = CASES["flairhub-upernet-convnextv2"]
    path = write(tmp_path)

    def runtime(backend: str, said: Said):
        loaded = load_model(str(path), say=lambda *a: None)
        return Predictor(loaded, "cpu", backend=backend, reporter=said).runtime_for((tile, tile))

    said = Said()
    fallback = runtime("auto", said)
    assert fallback.runtime == "torch" and not fallback.check["passed"]
    assert fallback.reason.startswith("auto: the OpenVINO conversion of")
    assert "disagrees with torch on the probe tile" in fallback.reason
    assert fallback.check["fp32"]["max_abs_diff"] > fallback.check["tolerance"]
    # traced at the run's own shape (128 px): nothing else to try, converted once
    assert sum(line.startswith("converting ") for line in said.lines) == 1
    assert not any("traced at a smaller tile" in line for line in said.lines)

    said = Said()  # the failed check is stored with the entry: not converted again
    with pytest.raises(RuntimeCheckFailed) as refused:
        runtime("openvino", said)
    assert "disagrees with torch" in str(refused.value)
    assert "run with --backend torch (or auto)" in str(refused.value)
    assert not any(line.startswith("converting") for line in said.lines)
    assert os.listdir(tmp_path / "cache" / "openvino")


def test_openvino_is_imported_without_telemetry(tmp_path: Path) -> None:
    """`import openvino` sends a usage event from a forked process unless its telemetry is
    kept off; the engine keeps it off (the fork also held a killed run's locks)."""
    code = (
        "import os, sys; forks = []; os.register_at_fork(before=lambda: forks.append(1)); "
        "import engine.runtime.openvino_net, engine.runtime.conversion; "
        "print(len(forks), sys.modules['openvino_telemetry'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(tmp_path)  # no consent file: OpenVINO would assume consent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.stdout.split() == ["0", "None"], done.stderr
    assert not (tmp_path / "intel").exists()  # nothing written for telemetry either
