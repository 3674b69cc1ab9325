"""Turning a model name or checkpoint path into a card plus a ready network."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from engine.errors import InputNotFound, ModelError
from engine.io.bands import CHANNEL_ORDER
from engine.models.architectures import Architecture, architecture_of, detect_architecture
from engine.models.card import ModelCard, Normalization
from engine.models.checkpoint import read_state_dict
from engine.models.download import resolve_weights
from engine.models.overrides import CardOverrides
from engine.models.registry import load_registry
from engine.models.smp_networks import smp_shape, unprefixed

log = logging.getLogger(__name__)

NORMALIZATION_NAMES = ("flair-inc", "unit")
FLAIR_INC_REFERENCE_CARD = "flair-inc-rgbie-15cl"  # its card holds FLAIR-INC's 5-band statistics
# a checkpoint without a card: its input count read as the first channels of FLAIR's RGBIE order
DEFAULT_CHANNELS = {n: CHANNEL_ORDER[:n] for n in (3, 4, 5)}
DEFAULT_CODES = {19: tuple(range(1, 20)), 13: (*range(1, 13), 19), 12: tuple(range(1, 13))}


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: its card (logits resolved) and its eval-mode network."""

    card: ModelCard
    network: torch.nn.Module
    weights_path: Path

    @property
    def architecture(self) -> Architecture:
        """The card's family in the architecture table."""
        return architecture_of(self.card)

    @property
    def uses_metadata(self) -> bool:
        """Whether the network also takes the acquisition metadata vector (some U-T&T)."""
        return self.architecture.uses_metadata(self.network)


def named_normalization(name: str, n_channels: int) -> Normalization:
    """`flair-inc`: mean/std on 0-255 values as the registry's cards state them; `unit`: /255."""
    if name == "unit":
        return Normalization(divisor=255.0)
    return load_registry().get(FLAIR_INC_REFERENCE_CARD).normalization.for_channels(n_channels)


def sidecar_card_path(checkpoint: Path) -> Path | None:
    """`<checkpoint>.card.json` or `<stem>.json` beside a checkpoint, if present."""
    for candidate in (
        checkpoint.with_name(checkpoint.name + ".card.json"),
        checkpoint.with_suffix(".json"),
    ):
        if candidate.is_file():
            return candidate
    return None


def smp_card_from_tensors(
    path: Path, state: Mapping[str, torch.Tensor], overrides: CardOverrides, decoder: str
) -> ModelCard:
    """A FLAIR-INC smp network's card (U-Net, FPN, DeepLabV3) inferred from the tensors, the
    file type and the user's options."""
    in_channels, n_logits, encoder = smp_shape(unprefixed(state, decoder))
    channels = overrides.channels or DEFAULT_CHANNELS.get(in_channels)
    codes = overrides.logit_codes or DEFAULT_CODES.get(n_logits)
    if channels is None:
        raise ModelError(f"{path} takes {in_channels} channels; say which with --channels")
    if codes is None:
        raise ModelError(f"{path} has {n_logits} logits; say their FLAIR codes with --classes")
    norm_name = overrides.normalization or ("unit" if path.suffix == ".ckpt" else "flair-inc")
    return ModelCard(
        name=path.stem,
        architecture=decoder,
        channels=channels,
        normalization=named_normalization(norm_name, len(channels)),
        logit_codes=codes,
        inactive_codes=overrides.inactive_codes or (),
        encoder=encoder,
        title=f"checkpoint {path.name}",
    )


def apply_overrides(card: ModelCard, overrides: CardOverrides) -> ModelCard:
    """The card with the fields given on the command line replaced."""
    changes: dict = {}
    if overrides.channels:
        changes["channels"] = overrides.channels
    if overrides.logit_codes:
        changes["logit_codes"] = overrides.logit_codes
    if overrides.inactive_codes is not None:
        changes["inactive_codes"] = overrides.inactive_codes
    if overrides.normalization:
        n = len(overrides.channels or card.channels)
        changes["normalization"] = named_normalization(overrides.normalization, n)
    return replace(card, **changes) if changes else card


def known_card(
    name_or_path: str, *, card_path: Path | None = None, overrides: CardOverrides | None = None
) -> ModelCard | None:
    """The card of a registry name or of a checkpoint with a card file, without reading any
    weights (so bands can be checked before a download); None when only the tensors can say."""
    overrides = overrides or CardOverrides()
    registry = load_registry()
    if name_or_path in registry:
        return apply_overrides(registry.get(name_or_path), overrides)
    path = Path(name_or_path).expanduser()
    card_file = card_path or (sidecar_card_path(path) if path.exists() else None)
    if card_file is None:
        return None
    return apply_overrides(ModelCard.from_json(card_file), overrides)


def resolve_card(
    name_or_path: str,
    *,
    card_path: Path | None = None,
    overrides: CardOverrides | None = None,
    allow_download: bool = False,
    say: Callable[[str], None] = log.info,
) -> tuple[ModelCard | None, Path]:
    """The card (None: infer it from the tensors) and the weights file of a name or path.

    Registry weights are resolved (and downloaded when allowed) before any other work, so a
    missing download stops the run at once.
    """
    overrides = overrides or CardOverrides()
    registry = load_registry()
    if name_or_path in registry:
        card = apply_overrides(registry.get(name_or_path), overrides)
        return card, resolve_weights(card, allow_download, say)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        if path.suffix or "/" in name_or_path or "\\" in name_or_path:
            raise InputNotFound(f"checkpoint {path} does not exist")
        registry.get(name_or_path)  # raises, listing the known names
    card_file = card_path or sidecar_card_path(path)
    if card_file is None:
        return None, path
    return apply_overrides(ModelCard.from_json(card_file), overrides), path


def load_model(
    name_or_path: str,
    *,
    card_path: Path | None = None,
    overrides: CardOverrides | None = None,
    allow_download: bool = False,
    say: Callable[[str], None] = log.info,
) -> LoadedModel:
    """Card plus eval-mode network for a registry name or checkpoint path, checked together."""
    overrides = overrides or CardOverrides()
    card, path = resolve_card(
        name_or_path,
        card_path=card_path,
        overrides=overrides,
        allow_download=allow_download,
        say=say,
    )
    state = read_state_dict(path)
    found = detect_architecture(state.keys(), path)
    if card is None:
        card = found.card_from_tensors(path, state, overrides)
        if card.source is not None and card.source.filename == path.name:
            say(f"{path.name}: the registry's {card.name}, known by its file name")
        else:
            say(
                f"no model card for {path.name}: assuming {found.title} with channels "
                f"{','.join(card.channels)}, logits -> FLAIR codes {list(card.logit_codes)}, "
                f"normalisation {_normalization_name(card)} (give a model card to "
                "change these)"
            )
    expected = architecture_of(card)
    if found is not expected:
        raise ModelError(
            f"{path.name} holds {found.title} but model {card.name} is {expected.title}"
        )
    network = expected.build(card, state)
    card = card.resolved_for_logits(expected.num_logits(network))
    return LoadedModel(card=card, network=network, weights_path=path)


def _normalization_name(card: ModelCard) -> str:
    """How the card normalises, named as `--normalization` would set it where it matches."""
    norm = card.normalization
    if norm.divisor == 255.0 and not norm.mean:
        return "'unit' (/255)"
    reference = named_normalization("flair-inc", len(card.channels))
    stats = f"mean {list(norm.mean)}, std {list(norm.std)}"
    return f"'flair-inc' ({stats})" if norm == reference else f"the card's own ({stats})"
