"""IGN's FLAIR-HUB land-cover networks, loaded from their published `.safetensors` as they are.

A FLAIR-HUB LC-A file holds one aerial encoder (a timm network inside smp's `tu-` encoder) under
`model.encoders.<modality>.seg_model.`, one decoder and head under
`model.main_decoders.<task>.seg_model.`, and the fusion module's 1x1 convolutions under
`model.fusion_handler.` (IGN's forward does not apply them with a single modality: they are the
only tensors not loaded). The encoder and the U-Net decoder are smp's own (their keys did not
change since IGN's smp 0.4.0); the UPerNet decoder is rebuilt in 0.4.0's layout
(engine/models/upernet040.py). Every other tensor must be there with its shape: a difference is
refused naming it, never re-initialised (IGN's own loader silently re-initialises).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import ModelError
from engine.models.card import ModelCard
from engine.models.checkpoint import describe_state_mismatch
from engine.models.checkpoint_cards import apply_overrides
from engine.models.families import FAMILIES
from engine.models.registry import load_registry

ENCODER_KEY = re.compile(r"^model\.encoders\.([^.]+)\.seg_model\.")
DECODER_KEY = re.compile(r"^model\.main_decoders\.([^.]+)\.seg_model\.")
UNUSED_PREFIXES = ("model.fusion_handler.",)
DECODER_MARKERS = {"upernet": ".seg_model.decoder.psp.", "unet": ".seg_model.decoder.blocks."}
# The stem whose weight gives the input channels, per encoder family (timm key names).
INPUT_CONVS = ("model.patch_embed.proj.weight", "model.stem_0.weight")
HEAD_WEIGHT = "segmentation_head.0.weight"
SEGMENTATION_CHANNELS = 64  # smp's UPerNet default, as IGN builds it
IGN_DECODER_IN_CHANNELS = 1  # IGN builds the decoder with in_channels=1 (an unused stage)


def holds(keys: Iterable[str], decoder: str) -> bool:
    """Whether a state dict's keys are a FLAIR-HUB network with this decoder."""
    marker = DECODER_MARKERS[decoder]
    has_encoder = has_decoder = False
    for key in keys:
        has_encoder = has_encoder or bool(ENCODER_KEY.match(key))
        has_decoder = has_decoder or (bool(DECODER_KEY.match(key)) and marker in key)
        if has_encoder and has_decoder:
            return True
    return False


def split_state(
    state: Mapping[str, torch.Tensor], name: str
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(encoder tensors, decoder + head tensors), prefixes removed; one encoder and one decoder
    only (a multimodal FLAIR-HUB model is refused naming its parts)."""
    encoders: dict[str, dict[str, torch.Tensor]] = {}
    decoders: dict[str, dict[str, torch.Tensor]] = {}
    stray = []
    for key, value in state.items():
        if key.startswith(UNUSED_PREFIXES):
            continue
        if found := ENCODER_KEY.match(key):
            encoders.setdefault(found.group(1), {})[key[found.end() :]] = value
        elif found := DECODER_KEY.match(key):
            decoders.setdefault(found.group(1), {})[key[found.end() :]] = value
        else:
            stray.append(key)
    if len(encoders) != 1 or len(decoders) != 1:
        raise ModelError(
            f"model {name}: a FLAIR-HUB aerial model has one encoder and one decoder; this file "
            f"has encoders {sorted(encoders) or 'none'} and decoders {sorted(decoders) or 'none'} "
            "(models that also need elevation, SPOT or Sentinel data are not supported)"
        )
    if stray:
        raise ModelError(
            f"model {name}: unexpected tensors outside the encoder and decoder: "
            f"{', '.join(stray[:6])}"
        )
    return next(iter(encoders.values())), next(iter(decoders.values()))


def input_channels(encoder_state: Mapping[str, torch.Tensor]) -> int | None:
    """The encoder's input channels, from its stem's weight (None when no known stem)."""
    for key in INPUT_CONVS:
        if key in encoder_state:
            return int(encoder_state[key].shape[1])
    return None


class FlairHubNetwork(nn.Module):
    """Encoder, decoder and head, called as IGN's model: features -> decoder -> head."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.segmentation_head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        out = self.decoder(*features) if _takes_varargs(self.decoder) else self.decoder(features)
        return self.segmentation_head(out)


def _takes_varargs(decoder: nn.Module) -> bool:
    from engine.models.upernet040 import UPerNetDecoder040

    return isinstance(decoder, UPerNetDecoder040)


def encoder_kwargs(card: ModelCard) -> dict[str, Any]:
    """timm options: Swin is built for the tile it runs on (its attention windows are)."""
    return {"img_size": card.tile_size_px} if card.encoder.startswith("swin") else {}


def build_network(card: ModelCard, decoder: str, n_logits: int) -> FlairHubNetwork:
    """The empty network of a card (no weights are ever downloaded: `weights=None`)."""
    import segmentation_models_pytorch as smp

    from engine.models.upernet040 import UPerNetDecoder040, upernet_head

    name = "tu-" + card.encoder
    n_in = len(card.channels)
    if decoder == "unet":
        unet = smp.Unet(
            name, encoder_weights=None, in_channels=n_in, classes=n_logits, **encoder_kwargs(card)
        )
        return FlairHubNetwork(unet.encoder, unet.decoder, unet.segmentation_head)
    encoder = smp.encoders.get_encoder(
        name, in_channels=n_in, depth=5, weights=None, **encoder_kwargs(card)
    )
    channels = [IGN_DECODER_IN_CHANNELS, *encoder.out_channels[1:]]
    return FlairHubNetwork(
        encoder,
        UPerNetDecoder040(channels, segmentation_channels=SEGMENTATION_CHANNELS),
        upernet_head(SEGMENTATION_CHANNELS, n_logits),
    )


def build_flairhub(
    card: ModelCard, state: Mapping[str, torch.Tensor], decoder: str
) -> FlairHubNetwork:
    """An eval-mode FLAIR-HUB network carrying every used tensor of `state`, strictly."""
    encoder_state, decoder_state = split_state(state, card.name)
    what = f"a FLAIR-HUB {card.encoder} {decoder_title(decoder)}"
    if HEAD_WEIGHT not in decoder_state:
        raise ModelError(f"model {card.name}: the checkpoint has no segmentation head")
    n_logits = int(decoder_state[HEAD_WEIGHT].shape[0])
    card.check_shape(input_channels(encoder_state), n_logits)
    try:
        network = build_network(card, decoder, n_logits)
    except (RuntimeError, ValueError, KeyError) as exc:  # timm/smp: unknown name, bad size
        raise ModelError(f"model {card.name}: cannot build {what}: {exc}") from exc
    merged = {f"encoder.{k}": v for k, v in encoder_state.items()}
    merged.update(decoder_state)
    mismatch = describe_state_mismatch(network.state_dict(), merged)
    if mismatch:
        raise ModelError(
            f"model {card.name}: the checkpoint is not {what} with {len(card.channels)} input "
            f"channels ({','.join(card.channels)}) and {n_logits} logits: {mismatch}"
        )
    network.load_state_dict(merged, strict=True)
    return network.eval()


def decoder_title(decoder: str) -> str:
    """'UPerNet' or 'U-Net', for messages (the family table's decoder)."""
    return FAMILIES[f"flairhub-{decoder}"].decoder


# --- cards of files given without one ------------------------------------------------------------

_SWIN = {  # (embed dim, depth of stage 3) -> timm size name
    (96, 6): "tiny",
    (96, 18): "small",
    (128, 18): "base",
    (192, 18): "large",
}
_CONVNEXT = {(96, 9): "tiny", (128, 27): "base", (192, 27): "large", (80, 8): "nano"}


def encoder_from_tensors(encoder_state: Mapping[str, torch.Tensor]) -> str | None:
    """The timm name of a Swin or ConvNeXt-V2 encoder, from its tensors (None: unknown)."""
    state = {k.removeprefix("model."): v for k, v in encoder_state.items()}  # smp's `tu-` wrapper
    keys = list(state)
    if "patch_embed.proj.weight" in state:
        dim = int(state["patch_embed.proj.weight"].shape[0])
        depth = len({k.split(".")[2] for k in keys if k.startswith("layers_2.blocks.")})
        size = _SWIN.get((dim, depth))
        table = state.get("layers_0.blocks.0.attn.relative_position_bias_table")
        if size is None or table is None:
            return None
        window = (int(round(table.shape[0] ** 0.5)) + 1) // 2
        pretrain = {7: 224, 12: 384}.get(window)
        return f"swin_{size}_patch4_window{window}_{pretrain}" if pretrain else None
    if "stem_0.weight" in state:
        dim = int(state["stem_0.weight"].shape[0])
        depth = len({k.split(".")[2] for k in keys if k.startswith("stages_2.blocks.")})
        size = _CONVNEXT.get((dim, depth))
        return f"convnextv2_{size}" if size else None
    return None


def card_from_tensors(
    path: Path, state: Mapping[str, torch.Tensor], overrides: Any, decoder: str
) -> ModelCard:
    """The card of a FLAIR-HUB file given by path: the registry card whose file name it has,
    else one built from its tensors, channels from `--channels` or the official name's
    `_IR_` / `_RGB_` (never guessed otherwise)."""
    registry = load_registry()
    for card in registry.cards:
        if card.source is not None and card.source.filename == path.name:
            return apply_overrides(card, overrides)
    encoder_state, _ = split_state(state, path.stem)
    encoder = encoder_from_tensors(encoder_state)
    if encoder is None:
        raise ModelError(
            f"{path.name}: a FLAIR-HUB {decoder_title(decoder)} whose encoder is not a known "
            "Swin or ConvNeXt-V2; give its card with --card",
            option="--card",
            file=str(path),
            unknown="encoder",
        )
    channels = overrides.channels
    if channels is None and "_IR_" in path.name:
        channels = ("NIR", "R", "G")
    elif channels is None and "_RGB_" in path.name:
        channels = ("R", "G", "B")
    if channels is None:
        raise ModelError(
            f"{path.name} is a FLAIR-HUB model: say which bands it takes with --channels "
            "NIR,R,G (IR models, IGN's IRC orthophoto) or R,G,B (RGB models), or give --card",
            option="--card",
            file=str(path),
            unknown="channels",
        )
    channels = tuple(channels)
    references = [
        c
        for c in registry.cards
        if c.architecture.startswith("flairhub-") and c.channels == channels
    ]
    if not references:
        raise ModelError(
            f"{path.name}: FLAIR-HUB models take NIR,R,G or R,G,B, not {','.join(channels)}"
        )
    card = replace(
        references[0],
        name=path.stem,
        title=f"checkpoint {path.name}",
        architecture=f"flairhub-{decoder}",
        encoder=encoder,
        source=None,
        published_miou=None,
        description="",
    )
    return apply_overrides(card, replace(overrides, channels=None))
