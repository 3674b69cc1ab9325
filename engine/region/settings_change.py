"""Why a region folder cannot be resumed with new settings, in the user's words.

The manifest (`engine.region.manifest`) refuses a resume whose settings differ from the recorded
ones; this module names each difference: the model's content (its file and SHA-256 now and
then), the input files (size, time, new or gone, a few named), the mask, and every other option
as `--tile-size 512 was 1024`. Kept apart because the wording is a concern of its own, read by
people, while the manifest is a file format.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

# settings recorded by content; a change to them gets its own sentence (what and which file)
MODEL_CONTENT = {"weights_sha256": "model weights", "card_sha256": "model card"}
# how a refusal names the other settings: their option, and what a None of theirs means
OPTIONS = {
    "model": ("--model", "a checkpoint file"),
    "overrides": ("--channels/--classes/--inactive/--normalization", "none"),
    "bands": ("--bands", "the model's channels"),
    "input_max": ("--input-max", "the default"),
    "precision": ("--precision", "auto"),
    "tile_size_px": ("--tile-size", "the model's"),
    "margin_px": ("--margin", "the model's"),
    "block_px": ("--block-size", "the default"),
    "confidence": ("--confidence", ""),
    "polygons": ("--polygons", ""),
}
SHOWN = 3  # files named per kind of change before "and N more"


def describe_change(
    out_dir: Path,
    key: dict[str, Any],
    old: dict[str, Any] | None,
    done: int,
    files: dict[str, str | None],
) -> str:
    """Why a folder's blocks cannot be resumed with these settings, field by field: the
    model's content first (the file, its SHA-256 now and then), then every other change (an
    input file's size or time, the mask, `--tile-size 512 was 1024`). `done` counts the blocks
    already mapped; `files` names the files behind `MODEL_CONTENT`'s keys and the mask."""
    if old is None:
        return (
            f"{out_dir} holds {done} block(s) mapped with other settings, recorded only by their "
            "hash (by an earlier version of the engine), so what changed cannot be named: rerun "
            "with the same settings to resume them, or rerun with --restart to map everything again"
        )
    changed = sorted(k for k in set(key) | set(old) if key.get(k) != old.get(k))
    parts = []
    for name, what in MODEL_CONTENT.items():
        if name not in changed:
            continue
        new_value, old_value = key.get(name), old.get(name)
        now = f"{files.get(name) or 'none'} has SHA-256 {new_value}" if new_value else "none now"
        then = f"SHA-256 {old_value}" if old_value else "none (or one not recorded by content)"
        parts.append(
            f"the {what} changed since the {done} block(s) already done in {out_dir}: {now}, "
            f"they were mapped with {then}"
        )
    others = [k for k in changed if k not in MODEL_CONTENT]
    details = "; ".join(
        line for k in others for line in _setting_change(k, key.get(k), old.get(k), files)
    )
    if parts:
        also = f"; other settings changed too ({', '.join(others)}: {details})" if others else ""
        return (
            "; ".join(parts) + also + "; resuming would mix two models in one map: rerun with "
            "--restart to map every block with this model, or give the earlier one to resume"
        )
    return (
        f"{out_dir} holds a region mapped with other settings (changed: {', '.join(others)}): "
        f"{details}; its {done} block(s) done were mapped with the earlier ones: rerun with the "
        "same settings to resume them, or rerun with --restart to map everything again with "
        "these (or choose another folder)"
    )


def _setting_change(name: str, new: Any, old: Any, files: dict[str, str | None]) -> list[str]:
    """How one setting changed, in the user's words (its option, its values now and then)."""
    if name == "inputs":
        return _inputs_change(new, old)
    if name == "mask":
        return [_mask_change(new, old, files.get("mask"))]
    option, default = OPTIONS.get(name, (name, "none"))
    if isinstance(new, bool) or isinstance(old, bool):
        return [f"{option} is given now, it was not" if new else f"{option} was given, not now"]

    def shown(value: Any) -> str:
        if value is None:
            return default
        if isinstance(value, list):
            return ",".join("-" if v is None else str(v) for v in value)
        return str(value)

    return [f"{option} {shown(new)} was {shown(old)}"]


def _inputs_change(new: Any, old: Any) -> list[str]:
    """Input files changed (size, time), new or gone since the blocks done, a few named."""
    try:
        now = {f["path"]: f for f in new}
        then = {f["path"]: f for f in old}
    except (TypeError, KeyError):  # recorded otherwise by another version
        return ["the input files changed"]
    changed = []
    for path, f in now.items():
        before = then.get(path)
        if before is None or before == f:
            continue
        how = []
        if f.get("size") != before.get("size"):
            how.append(f"size {_number(before.get('size'))} -> {_number(f.get('size'))} bytes")
        if f.get("mtime_ns") != before.get("mtime_ns"):
            how.append(f"modified {_when(before.get('mtime_ns'))} -> {_when(f.get('mtime_ns'))}")
        changed.append(f"{path} ({', '.join(how) or 'recorded otherwise'})")
    lines = []
    for items, what in (
        (changed, "changed since the blocks done"),
        ([p for p in now if p not in then], "given now, not then"),
        ([p for p in then if p not in now], "given then, not now"),
    ):
        if items:
            more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
            files = "; ".join(items[:SHOWN])
            lines.append(f"{len(items)} input file(s) {what}: {files}{more}")
    return lines or ["the input files are listed in another order"]


def _mask_change(new: Any, old: Any, mask_file: str | None) -> str:
    """The mask: given or not, its files' contents, or recorded by path by an earlier engine."""
    if new is None:
        return "no --mask now, there was one"
    if old is None:
        return f"--mask {mask_file} now, there was none" if mask_file else "a mask now, none then"
    if isinstance(old, str):
        return (
            f"the mask was recorded by its path ({old}) by an earlier version of the engine, "
            "not by content, so it cannot be known to be the same"
        )
    if isinstance(new, dict) and isinstance(old, dict) and "sha256" in new and "sha256" in old:
        now, then = new["sha256"], old["sha256"]
        differ = sorted(n for n in set(now) | set(then) if now.get(n) != then.get(n))
        return (
            f"the mask changed: {mask_file or 'its file'} has other contents "
            f"({', '.join(differ)}) than the one the blocks done were mapped with"
        )
    return f"the mask changed: {mask_file or new} is another one than {old}"


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def _when(mtime_ns: Any) -> str:
    if not isinstance(mtime_ns, int):
        return "?"
    seconds, ns = divmod(mtime_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) + f".{ns // 1_000_000:03d}"
