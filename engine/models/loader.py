"""Turning a model name or checkpoint path into a card plus a ready network."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from engine.errors import InputNotFound, ModelError
from engine.models.card import ModelCard, Normalization
from engine.models.checkpoint import read_state_dict, strip_wrapper_prefix
from engine.models.download import resolve_weights
from engine.models.registry import load_registry
from engine.models.unet import ANCHOR_KEY, build_unet, unet_shape

log = logging.getLogger(__name__)

NORMALIZATION_NAMES = ("flair-inc", "unit")
FLAIR_INC_REFERENCE_CARD = "flair-inc-rgbie-15cl"  # its card holds FLAIR-INC's 5-band statistics
DEFAULT_CHANNELS = {3: ("R", "G", "B"), 4: ("R", "G", "B", "NIR"), 5: ("R", "G", "B", "NIR", "E")}
DEFAULT_CODES = {19: tuple(range(1, 20)), 13: (*range(1, 13), 19), 12: tuple(range(1, 13))}


@dataclass(frozen=True)
class CardOverrides:
    """Card fields given on the command line for a checkpoint without a card."""

    channels: tuple[str, ...] | None = None
    logit_codes: tuple[int, ...] | None = None
    inactive_codes: tuple[int, ...] | None = None
    normalization: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: its card (logits resolved) and its eval-mode network."""

    card: ModelCard
    network: torch.nn.Module
    weights_path: Path


def _is_utt(state: dict[str, torch.Tensor]) -> bool:
    try:
        from engine.models.utt import is_utt_state_dict
    except ImportError:
        return False
    return is_utt_state_dict(state.keys())


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


def _card_from_checkpoint(
    path: Path,
    state: dict[str, torch.Tensor],
    overrides: CardOverrides,
    utt: bool,
    say: Callable[[str], None],
) -> ModelCard:
    """A card inferred from the tensors, the file type and the user's options, said in the log."""
    if utt:
        from engine.models.utt import default_utt_card

        return _apply_overrides(default_utt_card(path.stem), overrides)
    in_channels, n_logits = unet_shape(strip_wrapper_prefix(state, ANCHOR_KEY))
    channels = overrides.channels or DEFAULT_CHANNELS.get(in_channels)
    codes = overrides.logit_codes or DEFAULT_CODES.get(n_logits)
    if channels is None:
        raise ModelError(f"{path} takes {in_channels} channels; say which with --channels")
    if codes is None:
        raise ModelError(f"{path} has {n_logits} logits; say their FLAIR codes with --classes")
    norm_name = overrides.normalization or ("unit" if path.suffix == ".ckpt" else "flair-inc")
    card = ModelCard(
        name=path.stem,
        architecture="unet",
        channels=channels,
        normalization=named_normalization(norm_name, len(channels)),
        logit_codes=codes,
        inactive_codes=overrides.inactive_codes or (),
        title=f"checkpoint {path.name}",
    )
    say(
        f"no model card for {path.name}: assuming channels {','.join(card.channels)}, "
        f"logits -> FLAIR codes {list(card.logit_codes)}, normalisation {norm_name!r} "
        "(give --card, --channels, --classes or --normalization to change)"
    )
    return card


def _apply_overrides(card: ModelCard, overrides: CardOverrides) -> ModelCard:
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
        card = _apply_overrides(registry.get(name_or_path), overrides)
        return card, resolve_weights(card, allow_download, say)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        if path.suffix or "/" in name_or_path or "\\" in name_or_path:
            raise InputNotFound(f"checkpoint {path} does not exist")
        registry.get(name_or_path)  # raises, listing the known names
    card_file = card_path or sidecar_card_path(path)
    if card_file is None:
        return None, path
    return _apply_overrides(ModelCard.from_json(card_file), overrides), path


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
    utt = _is_utt(state)
    if card is None:
        card = _card_from_checkpoint(path, state, overrides, utt, say)
    if utt != (card.architecture == "utt"):
        found = "a U-T&T" if utt else "a U-Net"
        raise ModelError(
            f"{path.name} holds {found} network but model {card.name} is {card.architecture}"
        )
    if utt:
        from engine.models.utt import build_utt_network

        network = build_utt_network(card, state)
        n_logits = network.config.num_classes
    else:
        network = build_unet(card, state)
        n_logits = network.segmentation_head[0].out_channels
    card = card.resolved_for_logits(n_logits)
    return LoadedModel(card=card, network=network, weights_path=path)
