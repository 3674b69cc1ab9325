"""On-disk cache of loaded Sentinel-2 series, keyed by source, grid (area) and year.

A second run over the same area with the same source and year opens the cached cube and needs
no network. Entries are directories named by a hash of the key; one is built under a temporary
name and renamed when complete, so an interrupted load never leaves a half entry behind. To
refresh an entry (new products published for the current year), delete its directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.sentinel2.grid import Grid

log = logging.getLogger(__name__)

CACHE_ENV = "FLAIR_SENTINEL2_CACHE"
KEY_VERSION = 1


def default_cache_dir() -> Path:
    """``$FLAIR_SENTINEL2_CACHE``, else ``$XDG_CACHE_HOME/flair-landcover/sentinel2``
    (``~/.cache/...``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flair-landcover" / "sentinel2"


def cache_key(
    source_id: str, grid: Grid, year: int, bands: tuple[str, ...], extra: Any = None
) -> str:
    """A stable hex key for (source, grid, year, bands)."""
    payload = {
        "v": KEY_VERSION,
        "source": source_id,
        "grid": grid.to_dict(),
        "year": int(year),
        "bands": list(bands),
        "extra": extra,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@contextmanager
def building(entry: Path) -> Iterator[Path]:
    """A temporary directory beside `entry`, renamed to `entry` when the block succeeds.

    On any exception (cancel included) the temporary directory is removed.
    """
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=entry.name + ".part-", dir=entry.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if entry.exists():  # another run finished the same entry meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        os.replace(tmp, entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("cached the Sentinel-2 series in %s", entry)
