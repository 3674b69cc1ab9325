"""The UPerNet decoder and head with the key layout and arithmetic of smp 0.4.0.

IGN trained the FLAIR-HUB UPerNet models with segmentation-models-pytorch 0.4.0 and published
their state dicts in its layout. smp 0.5 and 0.6 rebuilt that decoder (30 keys missing, 50
unexpected, 2 shapes differ against 0.4.0) and changed its arithmetic, so no key map onto the
current smp decoder reproduces the published network. This module builds the 0.4.0 decoder
from plain torch layers instead, key for key:

- `psp`: pyramid pooling on the deepest feature (pool to 1, 2, 3, 6; 1x1 conv-BN-ReLU to a
  quarter of the channels each; bilinear back, align_corners False; concatenated with the input;
  1x1 conv-BN-ReLU to `pyramid_channels`).
- `fpn_stages`: one per shallower feature, deepest first; each upsamples the running map to the
  skip's size (bilinear, align_corners False) and adds the skip's 1x1 conv-BN-ReLU. The encoder's
  empty half-resolution feature (0 channels) still gets a stage: it only resizes to H/2, and
  that map comes back to H/4 below, a small blur that is part of the published network. The last
  stage (the input image, `in_channels` wide: 1 in IGN's build) is built but never run.
- `fpn_bottleneck`: every map resized to H/4, concatenated, 3x3 conv-BN-ReLU.
- head: 1x1 conv to the logits, then x4 bilinear upsampling with align_corners True
  (`UpsamplingBilinear2d`), not the align_corners False of `F.interpolate`'s default.

The oracle check against smp 0.4.0 itself is described in docs/flairhub.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

PSP_SIZES = (1, 2, 3, 6)


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Conv (no bias), BatchNorm, ReLU: keys `.0.weight`, `.1.*` as smp's Conv2dReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def _resize_in_chunks(
    x: torch.Tensor, via: Sequence[int], size: Sequence[int], out: torch.Tensor, chunk: int = 32
) -> None:
    """`out = _resize(_resize(x, via), size)` without holding the whole `via` map.

    Bilinear resizing treats each channel on its own, so resizing blocks of channels gives the
    same values; the H/2 map of a 1024 px tile would be 268 MB at 256 channels.
    """
    for start in range(0, x.shape[1], chunk):
        block = x[:, start : start + chunk]
        out[:, start : start + chunk] = _resize(_resize(block, via), size)


class PyramidPooling(nn.Module):
    """The PSP module on the deepest feature."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        branch = in_channels // len(PSP_SIZES)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(size), conv_bn_relu(in_channels, branch, 1))
            for size in PSP_SIZES
        )
        self.out_conv = conv_bn_relu(in_channels * 2, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        pooled = [_resize(block(x), size) for block in self.blocks]
        return self.out_conv(torch.cat([x, *pooled], dim=1))


class FpnStage(nn.Module):
    """Upsample the running map to the skip's size and add the skip (none when 0 channels)."""

    def __init__(self, skip_channels: int, pyramid_channels: int) -> None:
        super().__init__()
        self.skip_channels = skip_channels
        self.skip_conv: nn.Module = (
            conv_bn_relu(skip_channels, pyramid_channels, 1) if skip_channels else nn.Identity()
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = _resize(x, skip.shape[2:])
        if skip.shape[1]:
            x = x + self.skip_conv(skip)
        return x


class UPerNetDecoder040(nn.Module):
    """smp 0.4.0's `UPerNetDecoder`, same keys, same arithmetic (see the module docstring)."""

    def __init__(
        self,
        encoder_channels: Sequence[int],
        pyramid_channels: int = 256,
        segmentation_channels: int = 64,
    ) -> None:
        super().__init__()
        deepest_first = list(encoder_channels)[::-1]
        self.psp = PyramidPooling(deepest_first[0], pyramid_channels)
        self.fpn_stages = nn.ModuleList(FpnStage(ch, pyramid_channels) for ch in deepest_first[1:])
        self.fpn_bottleneck = conv_bn_relu(
            (len(deepest_first) - 1) * pyramid_channels, segmentation_channels, 3
        )
        # True while a runtime traces the network (engine.runtime): the plain forward below
        self.export_friendly = False

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        """The lean forward in torch; the plain one while a runtime traces the network."""
        if self.export_friendly:
            return self.forward_for_export(*features)
        return self.forward_lean(*features)

    def forward_for_export(self, *features: torch.Tensor) -> torch.Tensor:
        """The same arithmetic as `forward_lean`, written as a graph can hold it.

        A traced graph does not keep in-place writes into views of a preallocated tensor
        (`forward_lean`'s slices): OpenVINO converted it without an error and computed something
        else (6.6 % of pixels in the same class). Here each resized map goes into a list and one
        `torch.cat` joins them: equal to `forward_lean` bit for bit in torch
        (tests/engine/test_runtime_parity.py), at the cost of holding every map at once.
        """
        quarter = [s // 4 for s in features[0].shape[2:]]
        deepest_first = features[1:][::-1]
        stages = list(zip(deepest_first[1:], self.fpn_stages, strict=False))
        running = self.psp(deepest_first[0])
        maps = [_resize(running, quarter)]
        for i, (feature, stage) in enumerate(stages, start=1):
            if feature.shape[1] or i < len(stages):
                running = stage(running, feature)
                maps.append(_resize(running, quarter))
            else:  # the empty last stage: up to H/2 and back to H/4
                maps.append(_resize(_resize(running, feature.shape[2:]), quarter))
        return self.fpn_bottleneck(torch.cat(maps, dim=1))

    def forward_lean(self, *features: torch.Tensor) -> torch.Tensor:
        """`features` as smp encoders give them: the input first, then 1/2 ... 1/32.

        The arithmetic is smp 0.4.0's, value for value; only the memory differs. smp holds
        every FPN map, their resized copies and the concatenation at once (687 MB at a 1024 px
        tile); here each map is resized straight into its slice of the concatenation and freed,
        and the half-resolution map is never whole (`_resize_in_chunks`).
        """
        quarter = [s // 4 for s in features[0].shape[2:]]
        deepest_first = features[1:][::-1]
        stages = list(zip(deepest_first[1:], self.fpn_stages, strict=False))
        width = self.fpn_bottleneck[0].in_channels // (len(stages) + 1)
        running = self.psp(deepest_first[0])
        fused = running.new_empty((running.shape[0], width * (len(stages) + 1), *quarter))
        fused[:, :width] = _resize(running, quarter)
        for i, (feature, stage) in enumerate(stages, start=1):
            target = fused[:, i * width : (i + 1) * width]
            if feature.shape[1] or i < len(stages):
                running = stage(running, feature)
                target.copy_(_resize(running, quarter))
            else:  # the empty last stage: up to H/2 and back to H/4, channel block by block
                _resize_in_chunks(running, feature.shape[2:], quarter, target)
        del running
        return self.fpn_bottleneck(fused)


def upernet_head(segmentation_channels: int, classes: int) -> nn.Sequential:
    """1x1 conv to the logits, x4 bilinear with align_corners True (keys `0.weight`, `0.bias`)."""
    return nn.Sequential(
        nn.Conv2d(segmentation_channels, classes, kernel_size=1),
        nn.UpsamplingBilinear2d(scale_factor=4),
    )
