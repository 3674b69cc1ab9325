"""On-disk cache of loaded Sentinel-2 series, keyed by source, grid (area) and year.

A second run over the same area with the same source and year opens the cached cube and needs
no network. Entries are directories named by a hash of the key; the source builds one with
`engine.io.destination.published_folder`, so an interrupted load never leaves a half entry
behind. To refresh an entry (new products published for the current year), delete its
directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from engine.grid import Grid

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
