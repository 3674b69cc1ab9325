"""Card fields given on the command line, kept light so run settings import no torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CardOverrides:
    """Card fields given on the command line for a checkpoint without a card."""

    channels: tuple[str, ...] | None = None
    logit_codes: tuple[int, ...] | None = None
    inactive_codes: tuple[int, ...] | None = None
    normalization: str | None = None
