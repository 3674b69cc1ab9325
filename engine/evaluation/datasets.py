"""Finding image/label patch pairs in the FLAIR dataset layouts.

Layouts recognised (any depth under the folder given, mixed layouts allowed):

- FLAIR #1 / #2: `<domain>/<zone>/img/IMG_<id>.tif` with `<domain>/<zone>/msk/MSK_<id>.tif`, the
  labels either beside the images or under a separate labels root with the same structure
  (`flair_aerial_test/...` and `flair_labels_test/...`). Domain folders are `D022_2021`; labels
  are FLAIR codes 1..19; images have 5 bands R, G, B, NIR, elevation.
- FLAIR-HUB (the Hugging Face `IGNF/FLAIR-HUB` release): `<D004-2021>_AERIAL_RGBI/<ROI>/
  AERIAL_RGBI_<D004-2021>_<ROI>_<n>.tif` with `<D004-2021>_AERIAL_LABEL-COSIA/<ROI>/
  AERIAL_LABEL-COSIA_<D004-2021>_<ROI>_<n>.tif`: domain in the names, images 4 bands R, G, B, NIR
  (no elevation), labels 0-based in the FLAIR-HUB order (see `COSIA_TO_FLAIR`).
- Flat folders: an `aerial` (or `img`, `images`) folder and a `labels` (or `msk`, `masks`) folder
  holding `IMG_*` / `MSK_*` or otherwise identically named files, domain (`D022`) in the names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputNotFound, InvalidInput
from engine.io.bands import CHANNEL_ORDER
from engine.progress import LoggingReporter

HUB_CHANNELS = CHANNEL_ORDER[:4]  # FLAIR-HUB aerial patches: R, G, B, NIR, no elevation

# FLAIR-HUB AERIAL_LABEL-COSIA values (0-based, from the dataset's config_supervision.yaml)
# to FLAIR codes: 0 building, 1 greenhouse, 2 swimming pool, 3 impervious, 4 pervious,
# 5 bare soil, 6 water, 7 snow, 8 herbaceous, 9 agricultural, 10 plowed, 11 vineyard,
# 12 deciduous, 13 coniferous, 14 brushwood, 15 clear cut, 16 ligneous, 17 mixed, 18 other.
COSIA_TO_FLAIR = (1, 18, 13, 3, 2, 4, 5, 14, 10, 11, 12, 9, 7, 6, 8, 15, 17, 16, 19)
LABEL_ENCODINGS = ("flair", "cosia")

_DOMAIN_RE = re.compile(r"(D\d{3})(?:[_-](\d{4}))?")
_IMAGE_DIRS = {"img", "aerial", "images", "image"}
_LABEL_DIRS = {"msk", "labels", "label", "masks", "mask"}


@dataclass(frozen=True)
class FlairPatch:
    """One aerial patch and its label file."""

    patch_id: str
    domain: str
    zone: str
    image: Path
    label: Path
    label_encoding: str = "flair"  # "flair": codes 1..19; "cosia": FLAIR-HUB 0..18
    channels: tuple[str, ...] = CHANNEL_ORDER

    def band_indexes(self, wanted: Sequence[str]) -> list[int]:
        """1-based band numbers of the `wanted` channels in this patch's image."""
        missing = [c for c in wanted if c not in self.channels]
        if missing:
            raise InvalidInput(
                f"patch {self.image.name} has channels {list(self.channels)} but the model needs "
                f"{list(wanted)} (missing {missing}); pick a model using "
                f"{'/'.join(self.channels)} only"
            )
        return [self.channels.index(c) + 1 for c in wanted]


def labels_to_codes(labels: np.ndarray, encoding: str) -> np.ndarray:
    """Label values as FLAIR codes (uint8, 0 = no label)."""
    if encoding == "flair":
        out = labels.astype(np.uint8, copy=True)
        out[(labels < 0) | (labels > 19)] = 0
        return out
    if encoding == "cosia":
        lut = np.zeros(256, dtype=np.uint8)
        lut[: len(COSIA_TO_FLAIR)] = COSIA_TO_FLAIR
        return lut[np.clip(labels, 0, 255).astype(np.uint8)]
    raise InvalidInput(f"unknown label encoding {encoding!r}; use one of {LABEL_ENCODINGS}")


def _kind(path: Path, root: Path) -> str | None:
    name = path.name.upper()
    if name.startswith("MSK_") or "LABEL-COSIA" in name:
        return "label"
    if "LABEL" in name:  # other FLAIR-HUB label modalities (LPIS) are not land cover
        return None
    if name.startswith("IMG_") or "AERIAL_RGBI" in name:
        return "image"
    dirs = {p.lower() for p in path.relative_to(root).parts[:-1]}
    if dirs & _LABEL_DIRS:
        return "label"
    if dirs & _IMAGE_DIRS:
        return "image"
    return None


def _key(path: Path) -> str:
    stem = path.stem
    for token in ("AERIAL_LABEL-COSIA", "AERIAL_RGBI"):
        stem = stem.replace(token, "")
    stem = re.sub(r"(^|[_-])(IMG|MSK)(?=[_-]|$)", "", stem)
    return stem.strip("_-")


def _domain_zone(path: Path, root: Path) -> tuple[str, str]:
    parts = path.relative_to(root).parts
    for i, part in enumerate(parts[:-1]):
        m = _DOMAIN_RE.match(part)
        if m:
            domain = m.group(0)
            rest = [p for p in parts[i + 1 : -1] if p.lower() not in _IMAGE_DIRS | _LABEL_DIRS]
            return domain, (rest[0] if rest else "")
    m = _DOMAIN_RE.search(path.name)
    parent = path.parent.name
    zone = "" if parent.lower() in _IMAGE_DIRS | _LABEL_DIRS else parent
    return (m.group(0) if m else ""), zone


def domain_matches(domain: str, wanted: Sequence[str]) -> bool:
    """True when `domain` (D022_2021, D022-2021, D022) is one of `wanted` (D022 or D022_2021)."""
    norm = domain.replace("-", "_").upper()
    return any(
        norm == w or norm.startswith(w + "_")
        for w in (x.strip().replace("-", "_").upper() for x in wanted)
    )


def discover_patches(
    root: Path,
    domains: Sequence[str] | None = None,
    limit: int | None = None,
    label_encoding: str | None = None,
    say: Callable[..., None] | None = None,
) -> list[FlairPatch]:
    """Image/label pairs under `root`, sorted by domain, zone and id.

    Args:
        root: the dataset folder (or any sub-folder of it).
        domains: keep only these domains (`D022` or `D022_2021`).
        limit: keep the first `limit` patches after sorting and filtering.
        label_encoding: force "flair" or "cosia"; by default FLAIR-HUB label files are "cosia"
            and every other label file "flair".
        say: where warnings for the user go, `say(message, level)` (`Reporter.log`); by
            default `logging`.
    """
    say = say or LoggingReporter().log
    root = Path(root)
    if not root.is_dir():
        raise InputNotFound(
            f"dataset folder {root} does not exist or is not a folder", path=str(root)
        )
    images: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
            continue
        kind = _kind(path, root)
        if kind == "image":
            images.setdefault(_key(path), path)
        elif kind == "label":
            labels.setdefault(_key(path), path)
    if not images:
        raise InvalidInput(
            f"no FLAIR image patches found under {root}: expected <domain>/<zone>/img/IMG_*.tif, "
            "FLAIR-HUB *_AERIAL_RGBI folders, or an aerial/ folder beside a labels/ folder"
        )
    patches: list[FlairPatch] = []
    unlabelled = 0
    for key, image in images.items():
        label = labels.get(key)
        if label is None:
            unlabelled += 1
            continue
        domain, zone = _domain_zone(image, root)
        hub = "AERIAL_RGBI" in image.name.upper()
        encoding = label_encoding or ("cosia" if "LABEL-COSIA" in label.name.upper() else "flair")
        patches.append(
            FlairPatch(
                patch_id=image.stem,
                domain=domain,
                zone=zone,
                image=image,
                label=label,
                label_encoding=encoding,
                channels=HUB_CHANNELS if hub else CHANNEL_ORDER,
            )
        )
    if unlabelled:
        say(
            f"{unlabelled} image patches under {root} have no label file and are skipped", "WARNING"
        )
    if not patches:
        raise InvalidInput(
            f"none of the {len(images)} image patches under {root} has a label file "
            "(MSK_<id>.tif for IMG_<id>.tif); is this a test split without labels?"
        )
    if domains:
        found = sorted({p.domain for p in patches})
        patches = [p for p in patches if domain_matches(p.domain, domains)]
        if not patches:
            raise InvalidInput(
                f"no patch in domains {list(domains)}; domains found: {', '.join(found)}"
            )
    patches.sort(key=lambda p: (p.domain, p.zone, p.patch_id))
    if limit is not None and limit > 0:
        patches = patches[:limit]
    return patches
