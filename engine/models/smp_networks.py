"""FLAIR-INC's smp networks: a U-Net, FPN or DeepLabV3 decoder on a ResNet-34 or MiT-B5 encoder.

IGN published them as `*_weights.pth` state dicts with the prefix `model.seg_model.` (key listing
of the U-Net: shared/reference/unet_keys.txt); the others follow the same layout, as smp builds
them. Each decoder is recognised by a key only it has, each encoder by its first key. An older
smp stored DeepLabV3's decoder as a Sequential (`decoder.0.` = ASPP, `decoder.1.` = conv,
`decoder.2.` = batch norm); `LEGACY_KEYS` renames those before the strict check, as smp's own
`DeepLabV3.load_state_dict` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from engine.errors import ModelError
from engine.models.card import ModelCard
from engine.models.checkpoint import describe_state_mismatch, strip_wrapper_prefix
from engine.models.families import FAMILIES

if TYPE_CHECKING:
    import torch

HEAD_KEY = "segmentation_head.0.weight"

# encoder: its first key (whose shape[1] is the input channel count) -> smp encoder name
ENCODER_ANCHORS = {
    "encoder.conv1.weight": "resnet34",
    "encoder.patch_embed1.proj.weight": "mit_b5",
}

# decoder (the card's architecture) -> (smp class, a key only this decoder has)
DECODERS = {
    "unet": ("Unet", "decoder.blocks.0.conv1.0.weight"),
    "fpn": ("FPN", "decoder.p5.weight"),
    "deeplabv3": ("DeepLabV3", "decoder.aspp.convs.0.0.weight"),
}

# an older smp's DeepLabV3 decoder keys -> today's
LEGACY_KEYS = {
    "deeplabv3": (
        ("decoder.0.", "decoder.aspp."),
        ("decoder.1.", "decoder.conv."),
        ("decoder.2.", "decoder.bn."),
    ),
}


def encoder_anchor(keys: Iterable[str]) -> str | None:
    """The encoder anchor a (possibly prefixed) state dict holds, or None."""
    for key in keys:
        for anchor in ENCODER_ANCHORS:
            if key == anchor or key.endswith("." + anchor):
                return anchor
    return None


def current_key(key: str, decoder: str) -> str:
    """An unprefixed key with an older smp's decoder naming replaced by today's."""
    for old, new in LEGACY_KEYS.get(decoder, ()):
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def unprefixed(state: Mapping[str, torch.Tensor], decoder: str) -> dict[str, torch.Tensor]:
    """The smp network's own keys: wrapper prefix stripped, legacy decoder keys renamed."""
    anchor = encoder_anchor(state)
    if anchor is None:
        raise ModelError("the checkpoint holds no ResNet or MiT encoder (encoder.* keys)")
    stripped = strip_wrapper_prefix(state, anchor)
    return {current_key(k, decoder): v for k, v in stripped.items()}


def holds(keys: Iterable[str], decoder: str) -> bool:
    """Whether a state dict's keys are an smp network with this decoder (any prefix)."""
    keys = list(keys)
    anchor = encoder_anchor(keys)
    if anchor is None:
        return False
    prefix = next(k for k in keys if k == anchor or k.endswith("." + anchor))[: -len(anchor)]
    own = {current_key(k[len(prefix) :], decoder) for k in keys if k.startswith(prefix)}
    return DECODERS[decoder][1] in own


def smp_shape(state: Mapping[str, torch.Tensor]) -> tuple[int, int, str]:
    """(input channels, logits, encoder name) of an unprefixed smp state dict."""
    anchor = encoder_anchor(state)
    if anchor is None or HEAD_KEY not in state:
        raise ModelError(
            "the checkpoint has no encoder or no segmentation head: not an smp network"
        )
    return int(state[anchor].shape[1]), int(state[HEAD_KEY].shape[0]), ENCODER_ANCHORS[anchor]


def build_smp(card: ModelCard, state: Mapping[str, torch.Tensor], decoder: str) -> torch.nn.Module:
    """An eval-mode smp network carrying the checkpoint's weights, checked against `card`.

    ImageNet weights are never fetched (`encoder_weights=None`): every tensor comes from the
    checkpoint, and a tensor missing, left over or of another shape is refused by name.
    """
    import segmentation_models_pytorch as smp
    import torch

    class_name, _ = DECODERS[decoder]
    state = unprefixed(state, decoder)
    in_channels, n_logits, _ = smp_shape(state)
    card.check_shape(in_channels, n_logits)
    network = getattr(smp, class_name)(
        encoder_name=card.encoder, encoder_weights=None, in_channels=in_channels, classes=n_logits
    )
    mismatch = describe_state_mismatch(network.state_dict(), state)
    if mismatch:
        raise ModelError(
            f"model {card.name}: the checkpoint is not a {card.encoder} "
            f"{FAMILIES[decoder].decoder}: {mismatch}"
        )
    torch.nn.Module.load_state_dict(network, state, strict=True)  # keys already current
    return network.eval()
