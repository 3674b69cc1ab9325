"""Turning I/O failures into engine errors whose one line names the file and the cause.

GDAL reports a truncated GeoTIFF as `RasterioIOError: Read failed. See previous exception`
with the real text in the exception's cause, and a full disk as a bare `OSError` or as GDAL
text; these helpers read the whole chain and say "X is truncated or corrupt", "the disk
holding X is full", "permission denied". Also here: which path strings are GDAL's own
(`/vsizip/...`, URLs, `DRIVER:...`), which must reach GDAL untouched.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from engine.errors import EngineError, InputNotFound, InvalidInput, OutputError

_GDAL_PREFIX = re.compile(r"^(/vsi[a-z0-9_]+/|[a-zA-Z][a-zA-Z0-9+.-]*://|[A-Z][A-Z0-9_]+:)")
_NO_SPACE = ("no space left on device", "disk full", "not enough space")
_DENIED = ("permission denied", "access denied")
_READ_ONLY = ("read-only file system",)
NEARLY_FULL_BYTES = 1_000_000  # a write that failed with less than this free: the disk is full


def is_gdal_path(path: str | os.PathLike[str]) -> bool:
    """True for paths GDAL resolves itself: `/vsizip/...`, `/vsicurl/...`, `https://...`,
    `NETCDF:file.nc:var`. They are passed on as strings, never through `pathlib`
    (which would turn `/vsizip//abs/x.zip` into `/vsizip/abs/x.zip`)."""
    return bool(_GDAL_PREFIX.match(os.fspath(path)))


def user_path(text: str | os.PathLike[str]) -> Path | str:
    """A path as the user typed it: a GDAL path unchanged, a local one `~`-expanded."""
    if is_gdal_path(text):
        return os.fspath(text)
    return Path(text).expanduser()


def file_name(path: str | os.PathLike[str]) -> str:
    """The last part of a local or GDAL path, for messages."""
    return os.path.basename(os.fspath(path).rstrip("/")) or os.fspath(path)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _errno(exc: BaseException) -> int | None:
    for item in _chain(exc):
        # only OSError carries a POSIX errno; rasterio's CPLE_* `errno` is GDAL's error class
        if isinstance(item, OSError) and isinstance(item.errno, int):
            return item.errno
    return None


def _text(exc: BaseException) -> str:
    return " ".join(str(item) for item in _chain(exc)).lower()


def _cause_line(exc: BaseException) -> str:
    """The most specific line of the chain: GDAL's own text rather than 'Read failed'."""
    lines = []
    for item in _chain(exc):
        text = str(item).strip()
        if text and "see previous exception" not in text.lower():
            lines.append(text.splitlines()[0])
    line = lines[-1] if lines else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def io_errors() -> tuple[type[BaseException], ...]:
    """What GDAL, rasterio and the OS raise on I/O: `except io_errors()` around a read or write.

    rasterio's CPLE_* errors (what `rasterio.shutil.copy` raises) do not derive from
    `RasterioError`, so both are named."""
    from rasterio.errors import RasterioError

    try:
        from rasterio._err import CPLE_BaseError
    except ImportError:  # pragma: no cover - rasterio always has it
        CPLE_BaseError = RasterioError  # noqa: N806
    return (OSError, RasterioError, CPLE_BaseError)


def _is_io(exc: BaseException) -> bool:
    errors = io_errors()
    return any(isinstance(item, errors) for item in _chain(exc))


def _free_bytes(path: Path) -> int | None:
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _free_mb(path: Path) -> str:
    free = _free_bytes(path)
    return "free space unknown" if free is None else f"{free / 1e6:.1f} MB free"


def _kind(exc: BaseException) -> str | None:
    code, text = _errno(exc), _text(exc)
    if code == errno.ENOSPC or any(t in text for t in _NO_SPACE):
        return "full"
    if code == errno.EDQUOT or "quota exceeded" in text:
        return "quota"
    if code == errno.EROFS or any(t in text for t in _READ_ONLY):
        return "read-only"
    if code in (errno.EACCES, errno.EPERM) or any(t in text for t in _DENIED):
        return "denied"
    if code == errno.ENOENT:
        return "missing"
    return None


def read_failure(exc: BaseException, path: Path | str) -> EngineError:
    """The error to raise when reading `path` failed with `exc` (GDAL or the OS).

    Returns `exc` itself when it already is an `EngineError`.
    """
    if isinstance(exc, EngineError):
        return exc
    kind = _kind(exc)
    if kind == "denied":
        return InvalidInput(f"permission denied reading {path}; check the file's permissions")
    if kind == "missing":
        return InputNotFound(f"{path} disappeared while it was being read", path=str(path))
    if _errno(exc) == errno.EIO:
        return InvalidInput(
            f"input/output error reading {path} (a failing disk or network share?); "
            "copy the file to a local disk and retry"
        )
    return InvalidInput(
        f"{path} is truncated or corrupt (GDAL: {_cause_line(exc)}); "
        "copy or download it again, or check it with gdalinfo -checksum"
    )


def write_failure(exc: BaseException, path: Path | str) -> EngineError:
    """The error to raise when writing `path` failed with `exc` (GDAL, OGR or the OS).

    Returns `exc` itself when it already is an `EngineError`.
    """
    if isinstance(exc, EngineError):
        return exc
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    kind = _kind(exc)
    free = _free_bytes(folder)
    if kind is None and free is not None and free < NEARLY_FULL_BYTES:
        kind = "full"  # libtiff prints ENOSPC and GDAL raises a later, vaguer error
    if kind == "full":
        return OutputError(
            f"the disk holding {folder} is full ({_free_mb(folder)}) while writing {path.name}; "
            "free space or choose another destination"
        )
    if kind == "quota":
        return OutputError(
            f"your disk quota on {folder} is exceeded while writing {path.name}; "
            "free space or choose another destination"
        )
    if kind == "read-only":
        return OutputError(f"{folder} is on a read-only file system; choose another destination")
    if kind == "denied":
        return OutputError(f"permission denied writing {path}; choose another destination")
    return OutputError(f"could not write {path}: {_cause_line(exc)}")


def explain_unexpected(exc: BaseException) -> EngineError | None:
    """An `EngineError` naming the cause of an I/O failure that escaped its file's handler,
    or None for anything else (a real bug, to be reported)."""
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, MemoryError):
        return EngineError(
            "out of memory; lower --tile-size or --batch-size, or close other programs"
        )
    if not _is_io(exc):
        return None
    filename = next(
        (
            item.filename
            for item in _chain(exc)
            if isinstance(item, OSError) and isinstance(item.filename, str)
        ),
        None,
    )
    kind = _kind(exc)
    if kind in ("full", "quota", "read-only") or (kind == "denied" and filename):
        if filename:
            return write_failure(exc, filename)
        if kind == "full":
            return OutputError(
                "a disk is full (No space left on device); free space or choose another destination"
            )
        if kind == "quota":
            return OutputError("your disk quota is exceeded; free space or choose another one")
        return OutputError("a destination is on a read-only file system; choose another one")
    where = f" {filename}" if filename else ""
    return EngineError(f"input/output failure{where}: {_cause_line(exc)}")
