"""The installer's plain parts, without running QGIS or pip: which lines of pip's output name
the cause of a failure, how the pinned set is split, which Python creates the environment,
whether a torch index can be reached.

The pip outputs are real ones (pip 23.0.1 as Debian's venv has it, and pip 26), cut to the lines
around the failure. The index probe asks real loopback sockets: a closed port, a server that
never answers, an HTTP server in a thread.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from flair_qgis.index_probe import IndexProbe, probe_index
from flair_qgis.installer import (
    MAX_CAUSE_LINE_CHARS,
    MAX_CAUSE_LINES,
    TORCH_INDEX,
    PinnedRequirements,
    find_base_python,
    pip_failure_cause,
    pytorch_index,
    read_pins,
)

from .conftest import REPO
from .index_server import closed_port_url, serve_index


@pytest.fixture(autouse=True)
def _loopback_without_proxy(monkeypatch):
    """The loopback servers are asked directly, whatever proxy the machine's variables name."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")


NO_WHEEL = """\
Looking in links: /tmp/empty
ERROR: Could not find a version that satisfies the requirement torch (from versions: none)
ERROR: No matching distribution found for torch
"""

NAME_NOT_KNOWN = """\
Looking in indexes: https://download.pytorch.org/whl/cpu
WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7fa678eaf350>: Failed to establish a new connection: [Errno -2] Name or service not known')': /whl/cpu/torch/
WARNING: Retrying (Retry(total=3, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7fa678eaf590>: Failed to establish a new connection: [Errno -2] Name or service not known')': /whl/cpu/torch/
WARNING: Retrying (Retry(total=2, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7fa678eaf7d0>: Failed to establish a new connection: [Errno -2] Name or service not known')': /whl/cpu/torch/
ERROR: Could not find a version that satisfies the requirement torch==2.14.1 (from versions: none)
ERROR: No matching distribution found for torch==2.14.1
"""

UNREACHABLE = """\
Collecting numpy==2.4.6
ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: /simple/numpy/ (Caused by NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f2b1c0d4e10>: Failed to establish a new connection: [Errno 101] Network is unreachable'))
"""

# pip 23.0.1: the conflict on stdout, the two ERROR lines on stderr (merged by run_step)
CONFLICT = """\
Looking in links: /opt/wheels
Processing /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
Processing /opt/wheels/torchvision-0.29.1-py3-none-any.whl
INFO: pip is looking at multiple versions of torch to determine which version is compatible with other requirements. This could take a while.
ERROR: Cannot install torch and torchvision==0.29.1 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested torch
    torchvision 0.29.1 depends on torch==2.14.1

To fix this you could try to:
1. loosen the range of package versions you've specified
2. remove package versions to allow pip attempt to solve the dependency conflict

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts
"""

TRACEBACK = """\
ERROR: Exception:
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/pip/_internal/cli/base_command.py", line 160, in exc_logging_wrapper
    status = run_func(*args)
OSError: [Errno 28] No space left on device
"""


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_a_missing_wheel_names_the_requirement_and_where_pip_looked():
    assert pip_failure_cause(_lines(NO_WHEEL)).splitlines() == [
        "Looking in links: /tmp/empty",
        "ERROR: Could not find a version that satisfies the requirement torch (from versions: none)",
        "ERROR: No matching distribution found for torch",
    ]


def test_an_unknown_host_is_said_once_before_what_pip_could_not_find():
    cause = pip_failure_cause(_lines(NAME_NOT_KNOWN)).splitlines()
    assert cause[0] == "Looking in indexes: https://download.pytorch.org/whl/cpu"
    assert sum("Name or service not known" in line for line in cause) == 1
    assert "object at 0x" not in cause[1]
    assert cause[-1] == "ERROR: No matching distribution found for torch==2.14.1"
    assert len(cause) == 4


def test_an_unreachable_network_keeps_the_host():
    (cause,) = pip_failure_cause(_lines(UNREACHABLE)).splitlines()
    assert "host='pypi.org'" in cause and "Network is unreachable" in cause
    assert "object at 0x" not in cause


def test_a_conflict_names_both_sides():
    assert pip_failure_cause(_lines(CONFLICT)).splitlines() == [
        "ERROR: Cannot install torch and torchvision==0.29.1 because these package versions have conflicting dependencies.",
        "The conflict is caused by:",
        "The user requested torch",
        "torchvision 0.29.1 depends on torch==2.14.1",
        "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts",
    ]


def test_a_traceback_ends_with_its_exception():
    assert pip_failure_cause(_lines(TRACEBACK)).splitlines() == [
        "ERROR: Exception:",
        "OSError: [Errno 28] No space left on device",
    ]


def test_unknown_output_falls_back_to_its_last_line():
    assert pip_failure_cause(["Collecting foo", "Killed", "", "  "]) == "Killed"
    assert pip_failure_cause([]) == ""


def test_the_cause_is_bounded():
    errors = [f"ERROR: problem {n} " + "x" * 500 for n in range(40)]
    cause = pip_failure_cause(errors + errors).splitlines()
    assert len(cause) == MAX_CAUSE_LINES
    assert all(len(line) <= MAX_CAUSE_LINE_CHARS for line in cause)
    assert cause[0].startswith("ERROR: problem 0 ") and cause[-1].startswith("ERROR: problem 39 ")


def test_pins_split_torch_from_the_engine(tmp_path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "engine.txt").write_text(
        "# pinned\n--index-url https://example.org/simple\n\nnumpy==2.4.6\n"
        "torch==2.14.1\ntorchvision==0.29.1  # with torch\n"
        'nvidia-cublas==13.1.1.3 ; platform_system == "Linux"\n'
        'cuda-toolkit==13.0.3.0 ; platform_system == "Linux"\n'
        'triton==3.8.0 ; platform_system == "Linux"\n'
        "segmentation_models_pytorch==0.6.0\ntorchmetrics==1.0.0\n",
        encoding="utf-8",
    )
    assert read_pins(tmp_path) == PinnedRequirements(
        torch=("torch==2.14.1", "torchvision==0.29.1"),
        engine=("numpy==2.4.6", "segmentation_models_pytorch==0.6.0", "torchmetrics==1.0.0"),
    )


def test_a_source_without_pins_has_none(tmp_path):
    assert read_pins(tmp_path) == PinnedRequirements()
    assert read_pins(tmp_path / "flair_landcover-0.1.0-py3-none-any.whl") == PinnedRequirements()


def test_the_repository_pins_every_key_package_exactly():
    pins = read_pins(REPO)
    names = {line.split("==")[0].lower().replace("_", "-") for line in pins.engine}
    assert {p.split("==")[0] for p in pins.torch} == {"torch", "torchvision"}
    assert {
        "segmentation-models-pytorch",
        "timm",
        "rasterio",
        "numpy",
        "geopandas",
        "pyogrio",
        "pyproj",
        "shapely",
        "huggingface-hub",
        "safetensors",
        "odc-stac",
        "pystac-client",
        "planetary-computer",
        "matplotlib",
        "dask",
        "openvino",  # the CPU runtime (engine.runtime)
        "filelock",
    } <= names
    assert "openvino==2026.4.1" in pins.engine  # the version the runtime was measured with
    assert all("==" in line for line in pins.torch + pins.engine)
    assert not any(line.startswith(("nvidia-", "cuda-", "triton")) for line in pins.engine)


def _fake_python(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture()
def elsewhere_on_path(tmp_path, monkeypatch) -> Path:
    """A `python3` first on the PATH that is not QGIS's, and QGIS's Python installed in
    `tmp_path/qgis` (its `sys.base_exec_prefix`)."""
    stray = _fake_python(tmp_path / "elsewhere", "python3")
    monkeypatch.setenv("PATH", str(stray.parent))
    monkeypatch.setattr(sys, "base_exec_prefix", str(tmp_path / "qgis"))
    return stray


VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"


def test_base_python_is_the_running_interpreter_before_the_path(
    tmp_path, monkeypatch, elsewhere_on_path
):
    own = _fake_python(tmp_path / "qgis" / "bin", "python3")
    monkeypatch.setattr(sys, "_base_executable", str(own), raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python3"))
    assert find_base_python() == own
    monkeypatch.setattr(sys, "_base_executable", "", raising=False)
    monkeypatch.setattr(sys, "executable", str(own))
    assert find_base_python() == own


def test_base_python_embedded_in_qgis_is_its_installation_interpreter(
    tmp_path, monkeypatch, elsewhere_on_path
):
    """Embedded, the reported executable is QGIS itself or the first python3 on the PATH."""
    own = _fake_python(tmp_path / "qgis" / "bin", VERSION)
    monkeypatch.setattr(sys, "_base_executable", str(elsewhere_on_path), raising=False)
    monkeypatch.setattr(sys, "executable", str(elsewhere_on_path))
    assert find_base_python() == own
    qgis = _fake_python(tmp_path / "qgis" / "bin", "qgis")
    monkeypatch.setattr(sys, "_base_executable", str(qgis), raising=False)
    monkeypatch.setattr(sys, "executable", str(qgis))
    assert find_base_python() == own
    own.unlink()
    assert find_base_python() == elsewhere_on_path


def test_a_closed_port_is_unreachable_at_once():
    """Measured: 0.05 s (most of it loading the certificates); the deadline is 5 s."""
    start = time.monotonic()
    probe = probe_index(f"{closed_port_url()}/cpu")
    assert probe == IndexProbe(False, "connection refused")
    assert time.monotonic() - start < 2.0


def test_an_index_page_answered_200_is_reachable():
    with serve_index(200) as index:
        assert probe_index(f"{index.url}/cpu/") == IndexProbe(True)
        assert index.paths == ["/cpu/torch/"]  # the project's page, one request


@pytest.mark.parametrize("status", [403, 404])
def test_an_index_page_refused_is_unreachable(status):
    with serve_index(status) as index:
        assert probe_index(f"{index.url}/cpu") == IndexProbe(False, f"HTTP {status}")


def test_a_server_that_never_answers_is_unreachable_at_the_deadline():
    """The connection is accepted (by the kernel's backlog) but no answer ever comes."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        start = time.monotonic()
        probe = probe_index(f"http://127.0.0.1:{silent.getsockname()[1]}/cpu", timeout_s=0.5)
        elapsed = time.monotonic() - start
    assert probe == IndexProbe(False, "timed out after 0.5 s")
    assert 0.5 <= elapsed < 5.0


@pytest.mark.parametrize("variable", ["http_proxy", "PIP_PROXY"])
def test_the_probe_goes_through_the_proxy_pip_would_use(monkeypatch, variable):
    """A name that never resolves (RFC 6761 `.invalid`) is reached through the proxy."""
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "PIP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with serve_index(200) as proxy:
        monkeypatch.setenv(variable, proxy.url)
        assert probe_index("http://torch-index.invalid/whl/cpu") == IndexProbe(True)
        assert proxy.paths == ["http://torch-index.invalid/whl/cpu/torch/"]


def test_the_torch_index_can_be_replaced(monkeypatch):
    monkeypatch.delenv("FLAIR_TORCH_INDEX", raising=False)
    assert pytorch_index() == TORCH_INDEX == "https://download.pytorch.org/whl"
    monkeypatch.setenv("FLAIR_TORCH_INDEX", " https://mirror.example.org/pytorch/whl/ ")
    assert pytorch_index() == "https://mirror.example.org/pytorch/whl"
