"""All or nothing: every file a run writes, claimed before any work and committed together.

A run first claims each destination (`Destinations.claim`): the suffix is checked, a folder or
an existing file is refused without `overwrite`, and a lock beside it keeps a second run from
writing the same file at the same time. Each file is then written under a hidden temporary
name in the destination folder (same filesystem, so the final rename is atomic) and `commit`
renames them all at the very end; `abort` (error, cancel, signal) removes every temporary.

Temporaries are named `.<name>.partial-<pid>...` and the lock `.<name>.lock`. A run killed with
SIGKILL cannot clean up; the next run that takes the same lock knows no live run owns those
names any more and sweeps them. Nothing else in the folder is ever touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import OutputError

try:  # POSIX
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

except ImportError:  # Windows: a byte-range lock, released when the process ends
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True


_ACTIVE: set[Destinations] = set()
_ACTIVE_LOCK = threading.Lock()
_COMMITTED: list[bool] = []  # set once a run of this process has committed its outputs


@dataclass(frozen=True)
class OutputPaths:
    """The raster destinations of a run; only `classes` is required."""

    classes: Path
    confidence: Path | None = None
    probabilities: Path | None = None

    def rasters(self) -> list[tuple[str, Path]]:
        out = [("output", self.classes)]
        if self.confidence:
            out.append(("confidence", self.confidence))
        if self.probabilities:
            out.append(("probabilities", self.probabilities))
        return out


def temporary_name(path: Path) -> Path:
    """The hidden name a file is written under before it is renamed to `path`."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}{path.suffix}")


def _lock_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _partials(path: Path) -> list[Path]:
    """Leftovers of earlier runs for `path`: its temporaries and their GDAL/SQLite sidecars."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.partial-\d+")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return [path.parent / n for n in names if pattern.match(n)]


def _remove_with_sidecars(temp: Path) -> None:
    """Delete a temporary and what GDAL or SQLite made beside it (`.aux.xml`, `.ovr`, `-wal`)."""
    prefix = temp.name
    with contextlib.suppress(OSError):
        for name in os.listdir(temp.parent):
            if name.startswith(prefix):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    (temp.parent / name).unlink()


@dataclass
class _Lock:
    path: Path
    fd: int

    @classmethod
    def take(cls, target: Path) -> _Lock:
        """An exclusive lock on `target`'s lock file, or OutputError naming the other run."""
        lock_path = _lock_name(target)
        while True:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"cannot write in {target.parent}: {exc.strerror}") from None
            if not _try_lock(fd):
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise OutputError(
                    f"another run (process {owner}) is writing {target} right now; wait for it to "
                    "finish or choose another destination"
                ) from None
            # the previous owner may have removed the file between our open and our lock
            try:
                same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
                return cls(lock_path, fd)
            os.close(fd)

    def release(self) -> None:
        # unlink before close: a run that opened the old file sees another inode and retries
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self.fd)
        if os.name == "nt":  # Windows cannot remove an open file
            with contextlib.suppress(OSError):
                self.path.unlink()


@dataclass(eq=False)
class Destinations:
    """The files of one run: checked and locked by `claim`, renamed together by `commit`."""

    overwrite: bool = False
    _temps: dict[Path, Path] = field(default_factory=dict)  # final -> temporary
    _replaced: list[Path] = field(default_factory=list)  # stale files removed at commit
    _locks: list[_Lock] = field(default_factory=list)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    committed: bool = False

    def __enter__(self) -> Destinations:
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self)

    def claim(self, path: Path, kind: str, suffixes: Iterable[str] | None = None) -> Path:
        """Check and lock a destination; returns the temporary name to write it under.

        Refuses a suffix not in `suffixes`, a folder, a missing or read-only parent folder, a
        destination another live run is writing, and an existing file unless `overwrite`.
        """
        path = Path(path).absolute()
        if path in self._temps:
            raise OutputError(f"{path} is named as two outputs of this run; give each its own file")
        if suffixes is not None:
            allowed = tuple(suffixes)
            if path.suffix.lower() not in allowed:
                raise OutputError(f"{path}: the {kind} must be a {' or '.join(allowed)} file")
        folder = path.parent
        if not folder.is_dir():
            raise OutputError(f"output folder {folder} does not exist; create it first")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"output folder {folder} is not writable; choose another destination")
        if path.is_dir():
            raise OutputError(f"{path} is a folder; the {kind} must be a file name")
        self._locks.append(_Lock.take(path))
        for leftover in _partials(path):
            _remove_with_sidecars(leftover)
        if (path.exists() or path.is_symlink()) and not self.overwrite:
            raise OutputError(f"{path} already exists; add --overwrite to replace it")
        self._temps[path] = temporary_name(path)
        return self._temps[path]

    def replace_stale(self, path: Path) -> None:
        """A file this run makes obsolete (a sidecar of a replaced output): refused like an
        output when present without `overwrite`, removed at commit otherwise."""
        path = Path(path).absolute()
        if path.is_dir():
            raise OutputError(f"{path} is a folder where this run writes a file")
        if path.exists():
            if not self.overwrite:
                raise OutputError(f"{path} already exists; add --overwrite to replace it")
            self._replaced.append(path)

    def temporary(self, path: Path) -> Path:
        """The temporary name of a claimed destination."""
        return self._temps[Path(path).absolute()]

    def commit(self) -> None:
        """Rename every temporary into place; the given order is kept, the first claim last, so
        the main output appears only once its companions are there."""
        with self._guard:
            missing = [t for t in self._temps.values() if not t.exists()]
            if missing:
                raise OutputError(f"internal: {missing[0].name} was never written")
            for stale in self._replaced:
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
            for final, temp in reversed(list(self._temps.items())):
                os.replace(temp, final)
                _remove_with_sidecars(temp)
            self._temps.clear()
            self._release()
            self.committed = True
            _COMMITTED.append(True)

    def abort(self) -> None:
        """Remove every temporary and release the locks; safe to call more than once."""
        with self._guard:
            for temp in self._temps.values():
                _remove_with_sidecars(temp)
            self._temps.clear()
            self._release()

    def _release(self) -> None:
        for lock in self._locks:
            lock.release()
        self._locks.clear()


def abort_all() -> bool:
    """Abort every run in progress in this process (the CLI's last word before a hard exit).

    Waits for a commit that has begun, so files are either all in place or all gone; returns
    True when a run of this process has committed (its outputs are in place).
    """
    with _ACTIVE_LOCK:
        active = list(_ACTIVE)
    for destinations in active:
        destinations.abort()
    return bool(_COMMITTED)


@contextlib.contextmanager
def published_folder(path: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """A folder that appears at `path` complete or not at all (a cache entry, say).

    The block writes into the yielded hidden sibling `.<name>.partial-<pid>`; when it ends
    without an exception, that folder is renamed to `path` (`os.replace`: same filesystem, so
    atomic), otherwise it is removed. The lock `.<name>.lock` keeps a second run from building
    the same folder meanwhile (OutputError naming it), and the leftovers of a killed run are
    swept when the lock is taken, as for files. An existing folder at `path` is refused at once
    without `overwrite`; with it, the old folder is moved aside and removed after the rename.

    Raises:
        OutputError: the parent folder is missing or read-only, another run builds the same
            folder, `path` is a file, or `path` exists without `overwrite`.
    """
    path = Path(path).absolute()
    if not path.parent.is_dir():
        raise OutputError(f"folder {path.parent} does not exist; create it first")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"folder {path.parent} is not writable; choose another place")
    if path.is_file() or path.is_symlink():
        raise OutputError(f"{path} is a file where this run writes a folder")
    lock = _Lock.take(path)
    try:
        for leftover in _partials(path):
            shutil.rmtree(leftover, ignore_errors=True)
        if path.exists() and not overwrite:
            raise OutputError(f"{path} already exists; remove it or choose another folder")
        temp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        aside = temp.with_name(temp.name + "-old")  # a partial too: swept if the run is killed
        temp.mkdir()
        try:
            yield temp
            if path.exists():
                os.replace(path, aside)
            try:
                os.replace(temp, path)
            except OSError:
                if aside.exists() and not path.exists():
                    os.replace(aside, path)  # put the old folder back
                raise
            shutil.rmtree(aside, ignore_errors=True)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    finally:
        lock.release()


_WORKING_NAME = re.compile(r"^\.(?P<name>.+?)\.(?:partial-\d+.*|lock)$")


def sweep(destination: Path) -> list[Path]:
    """Remove what a killed run left for `destination` and its sidecars (same stem: the `.qml`
    beside a map): hidden temporaries and lock files no live run holds. Returns the working
    files still there (a live run's, or ones the system refused to remove). `destination`
    itself is never touched: whether it is a finished output is the caller's to judge.

    The plugin calls this (`flair-landcover cleanup`) after it had to kill a run, so that only
    the engine knows how its working files are named.
    """
    destination = Path(destination).absolute()
    folder = destination.parent
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    targets = set()
    for name in names:
        found = _WORKING_NAME.match(name)
        if found and Path(found["name"]).stem == destination.stem:
            targets.add(folder / found["name"])
    for target in sorted(targets):
        try:
            lock = _Lock.take(target)
        except OutputError:  # a live run writes it: its files are its own
            continue
        try:
            for leftover in _partials(target):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    _remove_with_sidecars(leftover)
        finally:
            lock.release()
    return sorted(
        folder / n
        for n in os.listdir(folder)
        if (found := _WORKING_NAME.match(n)) and Path(found["name"]).stem == destination.stem
    )
