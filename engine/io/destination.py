"""Checking an output destination before any work, so a run never fails at its very end."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from engine.errors import OutputError


def check_destination(path: Path, overwrite: bool, suffixes: Iterable[str], kind: str) -> None:
    """Refuse a destination whose folder is missing or read-only, that exists (without
    `overwrite`), or whose suffix is not one of `suffixes` (`kind` names the output)."""
    path = Path(path)
    allowed = tuple(suffixes)
    if path.suffix.lower() not in allowed:
        raise OutputError(f"{path}: the {kind} must be a {' or '.join(allowed)} file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"output folder {folder} is not writable; choose another destination")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; add --overwrite to replace it")
