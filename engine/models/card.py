"""Model cards: the typed, frozen description shipped with each set of weights.

A card says what a checkpoint expects (channels, normalisation, resolution, tile size) and what
its logits mean (the FLAIR code of each logit, codes that may never win). Cards are read from
JSON once, validated, and never mutated; a card whose logit count is only known from the
checkpoint is resolved against it with `ModelCard.resolved_for_logits`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.classes import CODES
from engine.errors import ModelError
from engine.io.bands import CHANNEL_ORDER
from engine.models.families import ARCHITECTURE_NAMES as ARCHITECTURES
from engine.sentinel2.settings import Sentinel2Settings


@dataclass(frozen=True)
class Normalization:
    """How raw 8-bit band values become model input: `(x / divisor - mean) / std` per channel."""

    divisor: float = 1.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Normalization:
        return cls(
            divisor=float(d.get("divisor", 1.0)),
            mean=tuple(float(v) for v in d.get("mean", ())),
            std=tuple(float(v) for v in d.get("std", ())),
        )

    def for_channels(self, n: int) -> Normalization:
        """The first `n` channels' statistics (RGB models reuse the RGBIE figures)."""
        return replace(self, mean=self.mean[:n], std=self.std[:n])


@dataclass(frozen=True)
class WeightsSource:
    """Where official weights live on the Hugging Face hub."""

    repo_id: str
    filename: str
    revision: str = "main"
    sha256: str | None = None
    # the download's size, said before a download and in the missing-weights message; None:
    # not known here
    size_bytes: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WeightsSource:
        size = d.get("size_bytes")
        return cls(
            repo_id=d["repo_id"],
            filename=d["filename"],
            revision=d.get("revision", "main"),
            sha256=d.get("sha256"),
            size_bytes=int(size) if size is not None else None,
        )


@dataclass(frozen=True)
class ModelCard:
    """Everything the engine must know to run a checkpoint and to interpret its logits."""

    name: str
    architecture: str
    channels: tuple[str, ...]
    normalization: Normalization
    logit_codes: tuple[int, ...]
    inactive_codes: tuple[int, ...] = ()
    encoder: str = "resnet34"
    res_m: float = 0.2
    tile_size_px: int = 512
    title: str = ""
    description: str = ""
    licence: str = ""
    source: WeightsSource | None = None
    logit_codes_by_count: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    sentinel2: Sentinel2Settings | None = None
    # mIoU published with the weights (test set of their benchmark); None: not known here.
    # `--model auto` ranks by it; `preference` breaks ties, lower first (engine/models/auto.py)
    published_miou: float | None = None
    preference: int = 100
    margin_px: int | None = None  # the tiling margin this model was measured at; None: default
    # flexible-tile models: the tile `predict` uses without --tile-size (a smaller one where
    # attention grows with the tile, MiT-B5); None: the engine's default
    default_tile_px: int | None = None

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ModelError(
                f"model {self.name}: architecture {self.architecture!r} "
                f"is not one of {ARCHITECTURES}"
            )
        bad = [c for c in self.channels if c not in CHANNEL_ORDER]
        if bad or not self.channels or len(set(self.channels)) != len(self.channels):
            raise ModelError(
                f"model {self.name}: channels {list(self.channels)} must be distinct names "
                f"among {list(CHANNEL_ORDER)}"
            )
        if len(self.normalization.mean) not in (0, len(self.channels)) or len(
            self.normalization.std
        ) != len(self.normalization.mean):
            raise ModelError(
                f"model {self.name}: normalisation has {len(self.normalization.mean)} means and "
                f"{len(self.normalization.std)} stds for {len(self.channels)} channels"
            )
        codes = set(self.logit_codes) | set(self.inactive_codes)
        for per_count in self.logit_codes_by_count.values():
            codes |= set(per_count)
        if not codes <= set(CODES):
            raise ModelError(
                f"model {self.name}: codes {sorted(codes - set(CODES))} are not FLAIR codes"
            )
        if self.logit_codes and set(self.logit_codes) <= set(self.inactive_codes):
            raise ModelError(f"model {self.name}: every logit is inactive")
        if self.published_miou is not None and not 0 < self.published_miou <= 100:
            raise ModelError(f"model {self.name}: published mIoU {self.published_miou} is not a %")

    def check_shape(self, in_channels: int | None, n_logits: int) -> None:
        """Refuse a checkpoint whose input channels (None: not known) or logits differ from
        this card's, saying which option fixes it (every family's build calls it)."""
        if in_channels is not None and in_channels != len(self.channels):
            raise ModelError(
                f"model {self.name}: the checkpoint takes {in_channels} input channels but the "
                f"card lists {len(self.channels)} ({','.join(self.channels)}); use a card or "
                f"--channels with {in_channels} channels",
                option="--card",
                model=self.name,
                mismatch="channels",
                checkpoint=in_channels,
                card=len(self.channels),
            )
        if self.num_logits and n_logits != self.num_logits:
            raise ModelError(
                f"model {self.name}: the checkpoint has {n_logits} logits but the card maps "
                f"{self.num_logits}; check --classes or the card",
                option="--card",
                model=self.name,
                mismatch="classes",
                checkpoint=n_logits,
                card=self.num_logits,
            )

    @property
    def num_logits(self) -> int:
        """Number of logits; 0 while it is only known from the checkpoint."""
        return len(self.logit_codes)

    @property
    def active_codes(self) -> tuple[int, ...]:
        """FLAIR codes this model can predict (over every logit layout the card knows)."""
        layouts = [self.logit_codes] if self.logit_codes else self.logit_codes_by_count.values()
        codes = dict.fromkeys(c for layout in layouts for c in layout)
        return tuple(c for c in codes if c not in self.inactive_codes)

    def resolved_for_logits(self, n_logits: int) -> ModelCard:
        """This card with its logit codes fixed for a checkpoint that has `n_logits` outputs."""
        if self.logit_codes:
            if n_logits != len(self.logit_codes):
                raise ModelError(
                    f"model {self.name}: the checkpoint has {n_logits} logits but the card "
                    f"describes {len(self.logit_codes)}"
                )
            return self
        if n_logits not in self.logit_codes_by_count:
            raise ModelError(
                f"model {self.name}: the checkpoint has {n_logits} logits; the card knows "
                f"layouts for {sorted(self.logit_codes_by_count)} logits"
            )
        return replace(self, logit_codes=tuple(self.logit_codes_by_count[n_logits]))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelCard:
        """Build a card from its JSON form; unknown keys are an error, not silently kept."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ModelError(f"model card {d.get('name', '?')}: unknown fields {sorted(unknown)}")
        try:
            values: dict[str, Any] = dict(d)
            values["channels"] = tuple(d["channels"])
            values["normalization"] = Normalization.from_dict(d.get("normalization", {}))
            values["logit_codes"] = tuple(int(c) for c in d.get("logit_codes", ()))
            values["inactive_codes"] = tuple(int(c) for c in d.get("inactive_codes", ()))
            values["logit_codes_by_count"] = {
                int(k): tuple(int(c) for c in v)
                for k, v in d.get("logit_codes_by_count", {}).items()
            }
            if d.get("source"):
                values["source"] = WeightsSource.from_dict(d["source"])
            if d.get("sentinel2") is not None:
                values["sentinel2"] = Sentinel2Settings.from_dict(d["sentinel2"])
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise ModelError(f"model card {d.get('name', '?')} is incomplete: {exc}") from exc

    @classmethod
    def from_json(cls, path: Path) -> ModelCard:
        """Read a card from a JSON file."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as exc:
            raise ModelError(f"model card {path} is not valid JSON: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used for `models --json` and sidecar cards)."""
        from dataclasses import asdict

        d = asdict(self)
        d["logit_codes_by_count"] = {str(k): list(v) for k, v in self.logit_codes_by_count.items()}
        return d
