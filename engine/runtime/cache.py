"""Converted networks on disk: one folder per content key, written atomically, under a lock.

An entry is `<cache>/openvino/<model>-<key>/` holding `model.xml`, `model.bin` and `entry.json`
(the key's fields, the files' sizes and SHA-256, and the check against torch). The key hashes
everything that shapes the converted graph: the checkpoint's content, the architecture and
encoder, the tile shape, the channels, the logits, the precision, the OpenVINO version and
`EXPORT_VERSION` (raised when the engine's export changes).

- Atomic: an entry is built in a temporary folder beside it and renamed into place, so a
  reader sees a whole entry or none.
- Checked on every read: a missing file, a size or SHA-256 that differs, an unreadable
  `entry.json` or one for another key makes the entry invalid; it is moved aside and rebuilt.
- Two processes: a lock file per key (`filelock`, on every OS); the second waits, then finds the
  first one's entry and uses it without converting.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from engine.digest import file_sha256

CACHE_ENV = "FLAIR_CACHE_DIR"
EXPORT_VERSION = 2  # raise when the export changes what a converted graph computes
ENTRY_FILE = "entry.json"
GRAPH_FILES = ("model.xml", "model.bin")


def cache_root() -> Path:
    """`$FLAIR_CACHE_DIR`, else the platform's cache folder, with `flair-landcover` inside."""
    if configured := os.environ.get(CACHE_ENV):
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "flair-landcover"


@dataclass(frozen=True)
class EntryKey:
    """What shapes a converted network; its hash names the cache entry."""

    model: str
    weights_sha256: str
    architecture: str
    encoder: str | None
    shape: tuple[int, int, int, int]  # (batch, channels, height, width)
    channels: tuple[str, ...]
    num_logits: int
    precision: str
    runtime_version: str

    def fields(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "weights_sha256": self.weights_sha256,
            "architecture": self.architecture,
            "encoder": self.encoder,
            "shape": list(self.shape),
            "channels": list(self.channels),
            "num_logits": self.num_logits,
            "precision": self.precision,
            "runtime_version": self.runtime_version,
            "export_version": EXPORT_VERSION,
        }

    @property
    def digest(self) -> str:
        text = json.dumps(self.fields(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def folder_name(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.model)[:60]
        return f"{safe}-{self.precision}-{self.digest}"


@dataclass(frozen=True)
class Entry:
    """A valid entry: its folder and its `entry.json` (the check's result under `check`)."""

    folder: Path
    record: dict[str, Any]

    @property
    def graph(self) -> Path:
        return self.folder / GRAPH_FILES[0]

    @property
    def check(self) -> dict[str, Any]:
        return self.record["check"]


class EntryCache:
    """The OpenVINO entries under one cache root."""

    def __init__(self, root: Path | None = None) -> None:
        self.folder = (root or cache_root()) / "openvino"

    def path(self, key: EntryKey) -> Path:
        return self.folder / key.folder_name

    def find(self, key: EntryKey) -> Entry | None:
        """The valid entry for `key`, or None (missing, partial or corrupt)."""
        folder = self.path(key)
        try:
            record = json.loads((folder / ENTRY_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != key.fields():
            return None
        files = record.get("files")
        if not isinstance(files, dict) or set(files) != set(GRAPH_FILES):
            return None
        for name, expected in files.items():
            path = folder / name
            try:
                if path.stat().st_size != expected.get("size"):
                    return None
            except OSError:
                return None
            if file_sha256(path) != expected.get("sha256"):
                return None
        if not isinstance(record.get("check"), dict):
            return None
        return Entry(folder, record)

    @contextmanager
    def locked(self, key: EntryKey, on_wait: Callable[[Path], None]) -> Iterator[None]:
        """Hold `key`'s lock; `on_wait(lock path)` is called when another process holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock_path = self.folder / f"{key.folder_name}.lock"
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except TimeoutError:  # filelock.Timeout is a TimeoutError
            on_wait(lock_path)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def write(self, key: EntryKey, build: Callable[[Path], dict[str, Any]]) -> Entry:
        """Build an entry in a temporary folder (`build(folder)` writes the graph files and
        returns the check), then rename it into place. Call under `locked(key)`."""
        final = self.path(key)
        temporary = self.folder / f".tmp-{key.folder_name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        temporary.mkdir(parents=True)
        try:
            check = build(temporary)
            files = {
                name: {
                    "size": (temporary / name).stat().st_size,
                    "sha256": file_sha256(temporary / name),
                }
                for name in GRAPH_FILES
            }
            record = {"key": key.fields(), "files": files, "check": check}
            (temporary / ENTRY_FILE).write_text(json.dumps(record, indent=1))
            self.discard(final)
            os.replace(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        return Entry(final, record)

    def discard(self, folder: Path) -> bool:
        """Remove an invalid entry (moved aside first, so no reader sees half of it)."""
        if not folder.exists():
            return False
        aside = folder.with_name(f".old-{folder.name}-{uuid.uuid4().hex[:8]}")
        os.replace(folder, aside)
        shutil.rmtree(aside, ignore_errors=True)
        return True
