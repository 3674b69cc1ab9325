"""SHA-256 of files: checkpoints, converted networks, a region's inputs and outputs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

_CHUNK = 8 << 20  # checkpoints are hundreds of MB: read in 8 MiB pieces


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_once(path: Path) -> Callable[[], str]:
    """A function giving `path`'s SHA-256, computed on its first call only (a run asks for its
    checkpoint's several times: cached cards, converted networks, a region's identity)."""
    found: list[str] = []

    def digest() -> str:
        if not found:
            found.append(file_sha256(path))
        return found[0]

    return digest
