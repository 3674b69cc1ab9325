"""What a Dask worker does with one block: an ordinary `predict` of the block's window.

The model is loaded once per worker process and kept (`_PREDICTORS`, keyed by everything that
shapes it), so a worker that maps a hundred blocks loads its checkpoint once. Errors the user
can act on (an unreadable tile) end the block as failed with their message, without retries;
anything else is raised so Dask retries the block, elsewhere if the worker died.

A block's failures are told in the user's terms: a read that fails through the region's
mosaic names the input tile behind it (one deleted or spoilt since the inputs were checked),
and an output error (a full disk, a read-only folder) is marked `fault: output`, since every
other block writes to the same folder: the run stops there rather than fail them all.

A block's warnings (a block with no valid pixel, say) are kept in its result and said by the
run's reporter as the block ends (`forward_warnings`), so they reach the user and the plugin.

The test seam: `BLOCK_STEP_HOOKS`, callables run at every progress step of every block with the
block's id and the phase (`inference` while its tiles run). It is empty in production; the
fault-tolerance tests fill it from a Dask worker preload (`distributed.worker.preload`, the
module `tests.fixtures.worker_faults`) to kill a worker mid-block, or make it take memory, at a
known point. Nothing here knows of any fault.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.classes import N_CODES
from engine.digest import file_sha256
from engine.errors import EngineError, InputNotFound, InvalidInput, OutputError
from engine.failures import io_errors, read_failure
from engine.inference import Predictor
from engine.pipeline import run_predict
from engine.planning import load_run_model
from engine.progress import Reporter
from engine.region.manifest import DONE, FAILED
from engine.settings import PredictSettings

OUTPUT_FAULT = "output"  # a failed block's `fault`: its folder cannot take outputs

# The test seam (module docstring): hook(block_id, phase) at every progress step of a block.
BLOCK_STEP_HOOKS: list[Callable[[str, str], None]] = []

_PREDICTORS: dict[tuple, Predictor] = {}
_PREDICTORS_LOCK = threading.Lock()


@dataclass(frozen=True)
class BlockJob:
    """One block to map: its `predict` settings (window set) and its outputs by kind,
    relative to the region's folder."""

    block_id: str
    settings: PredictSettings
    out_dir: Path
    files: tuple[tuple[str, str], ...]  # (kind, path relative to out_dir)


def cached_predictor(settings: PredictSettings) -> Predictor:
    """The predictor for these settings, loaded on the first block of this process."""
    key = (
        settings.model,
        str(settings.card_path),
        settings.overrides,
        settings.device,
        settings.threads,
        settings.precision,
        settings.backend,
    )
    with _PREDICTORS_LOCK:
        if key not in _PREDICTORS:
            # as `predict` loads it: a converted network in the cache spares torch here too
            loaded = load_run_model(settings.run_options, Reporter())
            _PREDICTORS[key] = Predictor(
                loaded, settings.device, settings.threads, settings.precision, settings.backend
            )
        return _PREDICTORS[key]


class _BlockReporter(Reporter):
    """Keeps a block's warnings for its result; runs the test seam's hooks at each step."""

    def __init__(self, block_id: str) -> None:
        super().__init__()
        self.block_id = block_id
        self.warnings: list[str] = []

    def log(self, message: str, level: str = "INFO") -> None:
        if level.upper() == "WARNING":
            with self._lock:
                self.warnings.append(message)

    def advance(self, n: int = 1, **extra: Any) -> None:
        super().advance(n, **extra)
        for hook in BLOCK_STEP_HOOKS:
            hook(self.block_id, self.phase)


def forward_warnings(result: dict[str, Any], block_id: str, reporter: Reporter) -> None:
    """Say a finished block's warnings on the run's reporter, each naming the block."""
    for message in result.get("warnings", ()):
        reporter.log(f"block {block_id}: {message}", "WARNING")


def _vrt_sources(path: Path | str, depth: int = 0) -> list[str]:
    """The files a local VRT reads, those of VRTs it reads included (the validity layers)."""
    path = Path(path)
    if path.suffix.lower() != ".vrt" or depth > 2:
        return []
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    found: list[str] = []
    for node in root.iter("SourceFilename"):
        name = (node.text or "").strip()
        if name and node.get("relativeToVRT") == "1":
            name = str(path.parent / name)
        if name and name not in found:
            found.append(name)
            found.extend(s for s in _vrt_sources(name, depth + 1) if s not in found)
    return found


def _chain_text(exc: BaseException) -> str:
    """The text of an error and of every error behind it (GDAL names the tile down there)."""
    parts: list[str] = []
    item: BaseException | None = exc
    while item is not None and len(parts) < 20:
        parts.append(str(item))
        item = item.__cause__ or item.__context__
    return "\n".join(parts)


def _read_reason(exc: EngineError, settings: PredictSettings) -> str:
    """Why a block's read failed, naming the input tile behind the region's mosaic: one gone
    since the inputs were checked (deleted, moved, a share gone), or the one GDAL names (by
    its path, or by its name alone: RVB and IRC tiles of that name are then told apart)."""
    if not isinstance(exc, (InvalidInput, InputNotFound)):
        return str(exc)
    sources = _vrt_sources(settings.input)
    if settings.elevation is not None:
        sources += _vrt_sources(settings.elevation.path)
    tiles = [s for s in sources if not s.lower().endswith(".vrt")]
    text = _chain_text(exc)
    named = [s for s in tiles if s in text] or [
        s for s in tiles if re.search(rf"(^|[\s/\\'\"(]){re.escape(os.path.basename(s))}", text)
    ]
    gone = [s for s in named or tiles if not os.path.exists(s)]
    if gone:
        more = f" (and {len(gone) - 1} other tile(s))" if len(gone) > 1 else ""
        return (
            f"input tile {gone[0]}{more} is gone since the inputs were checked (deleted or moved "
            "during the run): put it back"
        )
    cause = exc.__cause__ or exc.__context__
    if named and cause is not None:
        return str(read_failure(cause, " or ".join(_unreadable(named))))
    return str(exc)


def _unreadable(paths: list[str]) -> list[str]:
    """Of tiles of the same name (RVB and IRC), those a read of the whole file at a low
    resolution fails on (OpenJPEG reads every byte of a JPEG 2000 file then); all of them
    when that tells none apart."""
    import rasterio

    if len(paths) < 2 or len(paths) > 4:
        return paths
    failing = []
    for path in paths:
        try:
            with rasterio.open(path) as src:
                src.read(out_shape=(src.count, 8, 8))
        except io_errors():
            failing.append(path)
    return failing if 0 < len(failing) < len(paths) else paths


def compute_block(job: BlockJob) -> dict[str, Any]:
    """Map one block; returns its record's fields (state, outputs with checksums, counts) and
    the warnings said while mapping it."""
    started = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    reporter = _BlockReporter(job.block_id)
    try:
        predictor = cached_predictor(job.settings)
        result = run_predict(job.settings, reporter, predictor=predictor)
    except OutputError as exc:  # a full disk: the run stops, every block writes there
        return {
            "state": FAILED,
            "reason": str(exc),
            "fault": OUTPUT_FAULT,
            "worker": worker,
            "seconds": time.perf_counter() - started,
            "warnings": reporter.warnings,
        }
    except EngineError as exc:  # the user's to fix (a broken tile): retrying would not help
        return {
            "state": FAILED,
            "reason": _read_reason(exc, job.settings),
            "worker": worker,
            "seconds": time.perf_counter() - started,
            "warnings": reporter.warnings,
        }
    counts = [0] * N_CODES
    counts[0] = int(result.stats["nodata_pixels"])
    for row in result.stats["classes"]:
        counts[row["code"]] = int(row["pixels"])
    outputs = {
        kind: {"file": rel, "sha256": file_sha256(job.out_dir / rel)} for kind, rel in job.files
    }
    return {
        "state": DONE,
        "outputs": outputs,
        "counts": counts,
        "seconds": round(time.perf_counter() - started, 3),
        "worker": worker,
        "warnings": reporter.warnings,
    }
