"""What a Dask worker does with one block: an ordinary `predict` of the block's window.

The model is loaded once per worker process and kept (`_PREDICTORS`, keyed by everything that
shapes it), so a worker that maps a hundred blocks loads its checkpoint once. Errors the user
can act on (an unreadable tile) end the block as failed with their message, without retries;
anything else is raised so Dask retries the block, elsewhere if the worker died.

Test hook, and nothing else: with `FLAIR_REGION_TEST_DIE=BLOCK_ID:MARKER` in a worker's
environment, the worker process exits abruptly (`os._exit`) in the middle of that block, after
its first tile, once: it creates MARKER first and never dies again while MARKER exists. With
`FLAIR_REGION_TEST_DIE=BLOCK_ID` alone it dies on that block every time. The fault-tolerance
tests use it to kill a worker mid-block at a known point.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.inference import Predictor
from engine.models.loader import load_model
from engine.pipeline import run_predict
from engine.progress import Reporter
from engine.region.manifest import DONE, FAILED, sha256_file
from engine.settings import PredictSettings

TEST_DIE_ENV = "FLAIR_REGION_TEST_DIE"

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
    )
    with _PREDICTORS_LOCK:
        if key not in _PREDICTORS:
            loaded = load_model(
                settings.model,
                card_path=settings.card_path,
                overrides=settings.overrides,
                allow_download=settings.allow_download,
            )
            _PREDICTORS[key] = Predictor(
                loaded, settings.device, settings.threads, settings.precision
            )
        return _PREDICTORS[key]


class _BlockReporter(Reporter):
    """Silent; carries the test hook that kills the process after a block's first tile."""

    def __init__(self, block_id: str) -> None:
        super().__init__()
        target, _, marker = os.environ.get(TEST_DIE_ENV, "").partition(":")
        self._die = bool(target) and target == block_id
        self._die_marker = Path(marker) if marker else None

    def advance(self, n: int = 1, **extra: Any) -> None:
        super().advance(n, **extra)
        if not self._die or self.phase != "inference":
            return
        marker = self._die_marker
        if marker is None:
            os._exit(17)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(17)


def compute_block(job: BlockJob) -> dict[str, Any]:
    """Map one block; returns its record's fields (state, outputs with checksums, counts)."""
    started = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        predictor = cached_predictor(job.settings)
        result = run_predict(job.settings, _BlockReporter(job.block_id), predictor=predictor)
    except EngineError as exc:  # the user's to fix (a broken tile): retrying would not help
        return {
            "state": FAILED,
            "reason": str(exc),
            "worker": worker,
            "seconds": time.perf_counter() - started,
        }
    counts = [0] * 20
    counts[0] = int(result.stats["nodata_pixels"])
    for row in result.stats["classes"]:
        counts[row["code"]] = int(row["pixels"])
    outputs = {
        kind: {"file": rel, "sha256": sha256_file(job.out_dir / rel)} for kind, rel in job.files
    }
    return {
        "state": DONE,
        "outputs": outputs,
        "counts": counts,
        "seconds": round(time.perf_counter() - started, 3),
        "worker": worker,
    }
