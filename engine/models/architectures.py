"""The table of architecture families: the one place that knows how each family differs.

The loader, the pipeline, the predictor and evaluation ask this table (by the card's
`architecture` or by a checkpoint's key layout); none of them tests for a family by name. A new
family (FLAIR-HUB UPerNet, other smp decoders) is one `Family` in `engine.models.families` (its
name, titles and facts, in plain Python for the card and the plugin) plus one `Architecture`
entry here (its behaviour), and the contract test in tests/engine/test_architectures.py runs
every entry. A family that takes inputs besides the aerial tile names their supplier in
`EXTRA_INPUTS` (U-T&T: the Sentinel-2 series, `engine.models.utt.predict_inputs`), so runs
reach it through the table and never import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ModelError
from engine.models.card import ModelCard
from engine.models.checkpoint_cards import apply_overrides, smp_card_from_tensors
from engine.models.extras import ExtraInputs, ExtrasFactory, ExtrasSupplier
from engine.models.families import FAMILIES, SENTINEL2, Family
from engine.sentinel2.settings import Sentinel2Options

if TYPE_CHECKING:  # imported by the families' code: the table itself is read without it
    import torch

__all__ = [  # ExtraInputs: the forward's argument, re-exported for the callers of `forward`
    "ARCHITECTURES",
    "EXTRA_INPUTS",
    "Architecture",
    "ExtraInputs",
    "architecture_of",
    "detect_architecture",
]


def _sentinel2_inputs(options: Sentinel2Options, input_path: Path | str) -> ExtrasFactory:
    from engine.models.utt.predict_inputs import sentinel2_extras

    return sentinel2_extras(options, input_path)


# the suppliers of extra inputs, by the kind a family names (`Family.extra_inputs`)
EXTRA_INPUTS: dict[str, ExtrasSupplier] = {SENTINEL2: _sentinel2_inputs}


@dataclass(frozen=True)
class Architecture:
    """What differs between families: the family's facts and its behaviour.

    Attributes:
        family: the plain facts (name, titles, fixed tile, extra inputs), `engine.models.families`.
        holds: does a state dict's key layout belong to this family?
        build: card + state dict -> eval-mode network, strictly loaded.
        card_from_tensors: the card of a checkpoint given without one (tensors + options).
        num_logits: the network's output logits.
        forward: network + normalised tiles + extra inputs -> the map's logits (B, K, H, W).
    """

    family: Family
    holds: Callable[[Iterable[str]], bool]
    build: Callable[[ModelCard, Mapping[str, torch.Tensor]], torch.nn.Module]
    card_from_tensors: Callable[[Path, Mapping[str, torch.Tensor], Any], ModelCard]
    num_logits: Callable[[torch.nn.Module], int]
    forward: Callable[[torch.nn.Module, torch.Tensor, ExtraInputs | None], torch.Tensor]

    @property
    def name(self) -> str:
        """The card's `architecture` value."""
        return self.family.name

    @property
    def title(self) -> str:
        """For messages ("a U-Net", "a U-T&T network")."""
        return self.family.title

    @property
    def fixed_tile(self) -> bool:
        """True when the network runs on the card's tile size only."""
        return self.family.fixed_tile

    @property
    def uses_sentinel2(self) -> bool:
        """Whether runs need a Sentinel-2 source (extra inputs)."""
        return self.family.uses_sentinel2

    @property
    def extra_inputs(self) -> ExtrasSupplier | None:
        """The supplier of this family's extra inputs, None when the tile is all it takes."""
        kind = self.family.extra_inputs
        return None if kind is None else EXTRA_INPUTS[kind]

    def uses_metadata(self, network: torch.nn.Module) -> bool:
        """Whether this network also takes the acquisition metadata vector."""
        return bool(getattr(network, "uses_metadata", False))


# --- FLAIR-INC smp networks: U-Net (also FLAIR-1, plain smp), FPN, DeepLabV3 ------------------


def _single_output(network: torch.nn.Module, x: torch.Tensor, extras: ExtraInputs | None):
    return network(x)


def _smp(decoder: str) -> Architecture:
    """An smp decoder on a ResNet-34 or MiT-B5 encoder (engine.models.smp_networks)."""

    def holds(keys: Iterable[str]) -> bool:
        from engine.models.smp_networks import holds as smp_holds

        return smp_holds(keys, decoder)

    def build(card: ModelCard, state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
        from engine.models.smp_networks import build_smp

        return build_smp(card, state, decoder)

    def card(path: Path, state: Mapping[str, torch.Tensor], overrides: Any) -> ModelCard:
        return smp_card_from_tensors(path, state, overrides, decoder)

    return Architecture(
        family=FAMILIES[decoder],
        holds=holds,
        build=build,
        card_from_tensors=card,
        num_logits=lambda network: network.segmentation_head[0].out_channels,
        forward=_single_output,
    )


UNET = _smp("unet")
FPN = _smp("fpn")
DEEPLABV3 = _smp("deeplabv3")


# --- U-T&T (FLAIR-2: aerial U-Net fused with a U-TAE over Sentinel-2) ---------------------------


def _utt_holds(keys: Iterable[str]) -> bool:
    from engine.models.utt import is_utt_state_dict

    return is_utt_state_dict(keys)


def _utt_build(card: ModelCard, state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    from engine.models.utt import build_utt_network

    return build_utt_network(card, state)


def _utt_card(path: Path, state: Mapping[str, torch.Tensor], overrides: Any) -> ModelCard:
    from engine.models.utt import default_utt_card

    return apply_overrides(default_utt_card(path.stem), overrides)


def _utt_forward(network: torch.nn.Module, x: torch.Tensor, extras: ExtraInputs | None):
    import torch

    extras = extras or ExtraInputs()
    device = x.device

    def tensor(value: np.ndarray | None) -> torch.Tensor | None:
        return None if value is None else torch.as_tensor(value, dtype=torch.float32).to(device)

    # the fused output is the map; the aerial and Sentinel-2 branches' own logits are auxiliary
    return network(
        x, s2=tensor(extras.s2), dates=tensor(extras.dates), metadata=tensor(extras.metadata)
    )[1]


UTT = Architecture(
    family=FAMILIES["utt"],
    holds=_utt_holds,
    build=_utt_build,
    card_from_tensors=_utt_card,
    num_logits=lambda network: network.config.num_classes,
    forward=_utt_forward,
)


# --- FLAIR-HUB (IGN 2025): timm encoder with a UPerNet (smp 0.4.0 layout) or U-Net decoder ---


def _flairhub(decoder: str) -> Architecture:
    def holds(keys: Iterable[str]) -> bool:
        from engine.models.flairhub import holds as flairhub_holds

        return flairhub_holds(keys, decoder)

    def build(card: ModelCard, state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
        from engine.models.flairhub import build_flairhub

        return build_flairhub(card, state, decoder)

    def card(path: Path, state: Mapping[str, torch.Tensor], overrides: Any) -> ModelCard:
        from engine.models.flairhub import card_from_tensors

        return card_from_tensors(path, state, overrides, decoder)

    return Architecture(
        family=FAMILIES[f"flairhub-{decoder}"],
        holds=holds,
        build=build,
        card_from_tensors=card,
        num_logits=lambda network: network.segmentation_head[0].out_channels,
        forward=_single_output,
    )


FLAIRHUB_UPERNET = _flairhub("upernet")
FLAIRHUB_UNET = _flairhub("unet")

# Most specific first: a U-T&T checkpoint also holds a U-Net encoder key under `arch_vhr.`.
ARCHITECTURES: dict[str, Architecture] = {
    a.name: a for a in (UTT, UNET, FPN, DEEPLABV3, FLAIRHUB_UPERNET, FLAIRHUB_UNET)
}


def architecture_of(card: ModelCard) -> Architecture:
    """The family of a card."""
    try:
        return ARCHITECTURES[card.architecture]
    except KeyError:
        raise ModelError(
            f"model {card.name}: architecture {card.architecture!r} is not one of "
            f"{', '.join(ARCHITECTURES)}"
        ) from None


def detect_architecture(keys: Iterable[str], path: Path) -> Architecture:
    """The family whose key layout a checkpoint holds, or ModelError naming the known ones."""
    keys = list(keys)
    for architecture in ARCHITECTURES.values():
        if architecture.holds(keys):
            return architecture
    raise ModelError(
        f"{path.name} holds no network this engine knows (looked for the key layouts of "
        f"{', '.join(a.title for a in ARCHITECTURES.values())}); check the file"
    )
