"""`open_source`: the ``--sentinel2`` value turned into a source.

=========================== ===========================================================
spec                        source
=========================== ===========================================================
``stac``                    Earth Search, collection ``sentinel-2-c1-l2a``
``stac:URL[#collection]``   any STAC API (default collection ``sentinel-2-c1-l2a``)
``planetary-computer``      Microsoft Planetary Computer ``sentinel-2-l2a`` (needs the
                            ``planetary-computer`` package for signing)
``catalog:PATH``            a local static STAC catalogue (file or folder), offline
``flair:PATH``              a FLAIR-2 dataset folder (patches by name)
=========================== ===========================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import InvalidInput
from engine.sentinel2.base import Sentinel2Source
from engine.sentinel2.flair import FlairFolderSource
from engine.sentinel2.stac import (
    EARTH_SEARCH_COLLECTION,
    EARTH_SEARCH_URL,
    PLANETARY_COMPUTER_COLLECTION,
    PLANETARY_COMPUTER_URL,
    StacSource,
)

SPEC_FORMS = (
    "stac",
    "stac:URL[#collection]",
    "planetary-computer",
    "catalog:PATH[#collection]",
    "flair:PATH",
)


def open_source(spec: str, *, cache_dir: Path | None = None, **options: Any) -> Sentinel2Source:
    """The Sentinel-2 source named by `spec` (see the module table). Nothing is fetched yet.

    Args:
        spec: the ``--sentinel2`` value.
        cache_dir: where loaded series are cached (default: `default_cache_dir`).
        **options: STAC tuning passed to `StacSource` (retries, backoff_s, timeout_s, threads,
            block_px) or ``superpatch_px`` for a FLAIR folder.

    Raises:
        InvalidInput: the spec has none of the known forms.
        InputNotFound: a catalogue or folder path does not exist.
    """
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    kind = kind.lower()
    if kind == "stac" and not sep:
        return StacSource(url=EARTH_SEARCH_URL, cache_dir=cache_dir, **options)
    if kind in ("planetary-computer", "pc") and not sep:
        return StacSource(
            url=PLANETARY_COMPUTER_URL,
            collection=PLANETARY_COMPUTER_COLLECTION,
            sign=True,
            cache_dir=cache_dir,
            **options,
        )
    if kind == "stac" and rest:
        url, _, collection = rest.partition("#")
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"{spec!r}: the STAC API URL must start with http:// or https://")
        return StacSource(
            url=url.rstrip("/") or url,
            collection=collection or EARTH_SEARCH_COLLECTION,
            cache_dir=cache_dir,
            **options,
        )
    if kind == "catalog" and rest:
        path, _, collection = rest.partition("#")
        return StacSource(
            catalog=Path(path).expanduser(),
            collection=collection or "",
            cache_dir=cache_dir,
            **options,
        )
    if kind == "flair" and rest:
        return FlairFolderSource(Path(rest).expanduser(), cache_dir=cache_dir, **options)
    raise InvalidInput(f"unknown Sentinel-2 source {spec!r}; use one of {', '.join(SPEC_FORMS)}")
