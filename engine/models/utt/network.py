"""U-T&T: the FLAIR-2 aerial U-Net fused with a U-TAE over a Sentinel-2 time series.

Attribute names reproduce the official checkpoint keys (`arch_vhr`, `arch_hr`,
`fm_utae_featmap_cropped`, `fm_utae_featmap_collapsed`, `mtd_mlp`, `reshape_utae_output`), so an
official state dict (Lightning `model.` prefix removed) loads with `strict=True`.

Differences from the official forward, all deliberate (see docs/utt.md):

* Collapsed fusion per sample: the official code summarises batch element 0's U-TAE map and adds
  it to every sample; here each sample uses its own. Identical at batch size 1.
* No random modality dropout: the official forward draws `torch.rand(1)` on every call and skips
  the fusion when it falls under `drop_utae_modality` (0.0 by default, so it practically never
  does). Here the fusion always runs for a sample that has at least one Sentinel-2 date, and is
  skipped (the official "dropped modality" path) for a sample that has none or when `s2` is None.
* Padded dates (all-zero frames, as the official `pad_collate` makes them) are handled per sample:
  the L-TAE input norm uses the sample's real dates only (see `ltae.py`), so a padded sample gives
  the result it gives alone.
* The auxiliary head applies its 1x1 convolution before the nearest upsampling instead of after
  (the same values, far less work), and the U-TAE class head, whose output U-T&T discards, is not
  run.
"""

from __future__ import annotations

from dataclasses import dataclass

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import InvalidInput
from engine.models.utt.fusion import (
    CollapsedFusion,
    CroppedFusion,
    MetadataMLP,
    center_crop,
)
from engine.models.utt.metadata import metadata_length
from engine.models.utt.utae import UTAE, padded_frames
from engine.sentinel2.settings import FLAIR2

TILE_PX = 512
"""Aerial tile size the official U-T&T is built for (its metadata term needs a 16 x 16 map)."""


@dataclass(frozen=True)
class UTTConfig:
    """What varies between U-T&T checkpoints; the rest is FLAIR-2's fixed architecture.

    Attributes:
        num_classes: Logits of both heads (13).
        aerial_channels: Aerial input channels (5: R, G, B, NIR, elevation).
        s2_bands: Sentinel-2 bands (10).
        metadata_size: Length of the metadata vector, or None for a model without `mtd_mlp`.
        encoder: smp encoder of the aerial U-Net (resnet34).
    """

    num_classes: int = 13
    aerial_channels: int = 5
    s2_bands: int = len(FLAIR2.bands)
    metadata_size: int | None = metadata_length(len(FLAIR2.metadata_years))
    encoder: str = "resnet34"


class UTTNetwork(nn.Module):
    """The U-T&T network, inference-oriented; see the module docstring for what differs."""

    def __init__(self, config: UTTConfig = UTTConfig()) -> None:
        super().__init__()
        self.config = config
        self.arch_vhr = smp.Unet(
            encoder_name=config.encoder,
            encoder_weights=None,
            in_channels=config.aerial_channels,
            classes=config.num_classes,
        )
        self.arch_hr = UTAE(input_dim=config.s2_bands, out_conv=(32, config.num_classes))
        widths = list(self.arch_vhr.encoder.out_channels)
        s2_width = self.arch_hr.encoder_widths[0]
        self.fm_utae_featmap_cropped = CroppedFusion(s2_width, widths)
        self.fm_utae_featmap_collapsed = CollapsedFusion(s2_width, widths)
        if config.metadata_size is not None:
            self.mtd_mlp = MetadataMLP(config.metadata_size, TILE_PX // 2 ** (len(widths) - 1))
        self.reshape_utae_output = nn.Sequential(
            nn.Upsample(size=(TILE_PX, TILE_PX), mode="nearest"),
            nn.Conv2d(s2_width, config.num_classes, kernel_size=1),
        )

    @property
    def uses_metadata(self) -> bool:
        """Whether this network has the metadata MLP (and so needs the metadata vector)."""
        return self.config.metadata_size is not None

    def forward(
        self,
        aerial: torch.Tensor,
        s2: torch.Tensor | None = None,
        dates: torch.Tensor | None = None,
        metadata: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run U-T&T.

        Args:
            aerial: `[B, 5, H, W]` float, uint8 values / 255 (no mean/std); H and W multiples of
                32 (512 for the official model, required when the metadata MLP is used).
            s2: `[B, T, 10, h, w]` float32 raw Sentinel-2 digital numbers (h = w = 40 for the
                official model), frames that are all zero are padding; None runs the aerial
                branch alone for every sample.
            dates: `[B, T]` float32 day offsets to the reference date (0 at padded frames).
            metadata: `[B, 45]` float32 metadata vectors (see `metadata.py`); required when the
                network has the metadata MLP, ignored otherwise.

        Returns:
            `(aux_logits, main_logits)`, both `[B, num_classes, H, W]`. The prediction is the argmax
            of `main_logits`. `aux_logits` are the U-TAE head's; they are zero for a sample that
            has no Sentinel-2 date.
        """
        self._check_inputs(aerial, s2, dates, metadata)
        b, _, h, w = aerial.shape
        features = list(self.arch_vhr.encoder(aerial))
        if self.uses_metadata:
            rows = self.mtd_mlp(metadata.to(aerial.dtype))
            features[-1] = features[-1] + rows[:, None, :, None]
        aux = aerial.new_zeros((b, self.config.num_classes, h, w))
        if s2 is not None:
            has_s2 = ~padded_frames(s2, self.arch_hr.pad_value).all(dim=1)
            if bool(has_s2.all()):
                features, aux = self._fuse(features, s2, dates, (h, w))
            elif bool(has_s2.any()):
                idx = has_s2.nonzero().squeeze(1)
                sub_features = [f.index_select(0, idx) for f in features]
                sub_features, sub_aux = self._fuse(
                    sub_features, s2.index_select(0, idx), dates.index_select(0, idx), (h, w)
                )
                features = [
                    f.index_copy(0, idx, g) for f, g in zip(features, sub_features, strict=True)
                ]
                aux = aux.to(sub_aux.dtype).index_copy(0, idx, sub_aux)
        main = self.arch_vhr.segmentation_head(self.arch_vhr.decoder(features))
        return aux, main

    def _fuse(
        self,
        features: list[torch.Tensor],
        s2: torch.Tensor,
        dates: torch.Tensor,
        size: tuple[int, int],
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Add the Sentinel-2 terms to the U-Net features; also return the auxiliary logits."""
        last = self.arch_hr(s2, dates.to(s2.dtype))[-1]
        crop = center_crop(last)
        cropped = self.fm_utae_featmap_cropped(crop, [f.shape[-1] for f in features])
        collapsed = self.fm_utae_featmap_collapsed(last.mean(dim=(-2, -1)))
        fused = [f + (c + v) for f, c, v in zip(features, cropped, collapsed, strict=True)]
        return fused, self.aux_head(crop, size)

    def aux_head(self, crop: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Auxiliary logits of a cropped U-TAE map: 1x1 convolution, then nearest upsampling.

        The official head upsamples first; a 1x1 convolution commutes with nearest upsampling, so
        the values are the same. Nearest is PyTorch's legacy rule (source index
        `floor(dst * in / out)`), giving blocks of 52, 51, 51, 51, 51, 52, ... pixels for 10 -> 512.
        """
        logits = self.reshape_utae_output[1](crop)
        return F.interpolate(logits, size=size, mode="nearest")

    def _check_inputs(
        self,
        aerial: torch.Tensor,
        s2: torch.Tensor | None,
        dates: torch.Tensor | None,
        metadata: torch.Tensor | None,
    ) -> None:
        cfg = self.config
        if aerial.dim() != 4 or aerial.shape[1] != cfg.aerial_channels:
            raise InvalidInput(
                f"U-T&T: aerial input must be [B, {cfg.aerial_channels}, H, W], "
                f"got {list(aerial.shape)}"
            )
        b, _, h, w = aerial.shape
        if h % 32 or w % 32:
            raise InvalidInput(f"U-T&T: aerial tiles must be multiples of 32 px, got {h}x{w}")
        if self.uses_metadata:
            if metadata is None:
                raise InvalidInput(
                    "U-T&T: this model was trained with aerial metadata; give the "
                    f"[B, {cfg.metadata_size}] metadata vector (see engine.models.utt.metadata)"
                )
            if tuple(metadata.shape) != (b, cfg.metadata_size):
                raise InvalidInput(
                    f"U-T&T: metadata must be [{b}, {cfg.metadata_size}], "
                    f"got {list(metadata.shape)}"
                )
            if (h, w) != (TILE_PX, TILE_PX):
                raise InvalidInput(
                    f"U-T&T with metadata runs on {TILE_PX} x {TILE_PX} px tiles, got {h}x{w}"
                )
        if s2 is None:
            return
        if s2.dim() != 5 or s2.shape[0] != b or s2.shape[2] != cfg.s2_bands:
            raise InvalidInput(
                f"U-T&T: Sentinel-2 input must be [{b}, T, {cfg.s2_bands}, h, w], "
                f"got {list(s2.shape)}"
            )
        if min(s2.shape[-2:]) < 10 or s2.shape[-1] % 8 or s2.shape[-2] % 8:
            raise InvalidInput(
                f"U-T&T: Sentinel-2 super-patches must be at least 10 px and multiples of 8 "
                f"(40 x 40 for FLAIR-2), got {s2.shape[-2]}x{s2.shape[-1]}"
            )
        if dates is None or tuple(dates.shape) != tuple(s2.shape[:2]):
            got = None if dates is None else list(dates.shape)
            raise InvalidInput(f"U-T&T: dates must be [{b}, {s2.shape[1]}] day offsets, got {got}")
