"""U-T&T against an independent reference forward written from UTT_FACTS.md.

The reference below is a plain functional re-implementation of the official forward, written
from the facts sheet (shared/reference/UTT_FACTS.md sections 2-6), not from the engine's modules:
it reads the weights by key from the state dict and uses `torch.nn.functional` only, plus smp's
U-Net for the aerial branch (the library the official code uses) and torchvision's CenterCrop. It
keeps the official quirks (collapsed fusion from batch element 0, upsample-then-convolve auxiliary
head, the fusion added to f0 too), so it is compared at batch size 1, as the official inference
runs. The official code itself is not run here.
"""

from __future__ import annotations

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
import torchvision.transforms as T

from engine.models.card import ModelCard, Normalization, Sentinel2Settings
from engine.models.utt import build_utt_network
from engine.models.utt.metadata import encode_metadata
from tests.fixtures.utt_checkpoint import utt_state_dict

EPS = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _bn(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.batch_norm(
        x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
        False, 0.0, EPS,
    )  # fmt: skip


def _conv_norm_relu(x, sd, conv, norm, kind, stride=1, pad=1):
    """Conv (reflect padding), GroupNorm(4) or BatchNorm, ReLU."""
    if pad:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, sd[f"{conv}.weight"], sd[f"{conv}.bias"], stride=stride)
    if kind == "group":
        x = F.group_norm(x, 4, sd[f"{norm}.weight"], sd[f"{norm}.bias"], EPS)
    else:
        x = _bn(x, sd, norm)
    return F.relu(x)


def _res(x, sd, p, kind):
    y = _conv_norm_relu(x, sd, f"{p}.conv1.conv.0", f"{p}.conv1.conv.1", kind)
    return y + _conv_norm_relu(y, sd, f"{p}.conv2.conv.0", f"{p}.conv2.conv.1", kind)


def _ltae(e3: torch.Tensor, dates: torch.Tensor, sd: dict):
    """e3 [T, 128, 5, 5] of one sample -> m0 [1, 128, 5, 5], attention [16, T, 5, 5]."""
    p = "arch_hr.temporal_encoder"
    t, c, h, w = e3.shape
    seq = e3.permute(2, 3, 0, 1).reshape(h * w, t, c)  # one sequence per pixel
    seq = F.group_norm(seq.transpose(1, 2), 16, sd[f"{p}.in_norm.weight"], sd[f"{p}.in_norm.bias"])
    seq = F.conv1d(seq, sd[f"{p}.inconv.weight"], sd[f"{p}.inconv.bias"]).transpose(1, 2)
    j = torch.arange(16)
    divisor = torch.tensor([1000.0 ** (2 * (int(i) // 2) / 16) for i in j])
    angle = dates[:, None] / divisor
    pe = torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle))  # [T, 16]
    seq = seq + pe.repeat(1, 16)
    keys = F.linear(
        seq, sd[f"{p}.attention_heads.fc1_k.weight"], sd[f"{p}.attention_heads.fc1_k.bias"]
    )
    keys = keys.view(h * w, t, 16, 4)
    scores = (keys * sd[f"{p}.attention_heads.Q"]).sum(-1) / 2.0  # temperature sqrt(4)
    attn = torch.softmax(scores, dim=1)  # [pix, T, 16]
    values = seq.view(h * w, t, 16, 16)
    heads = (attn[..., None] * values).sum(dim=1).reshape(h * w, 256)
    out = F.linear(heads, sd[f"{p}.mlp.0.weight"], sd[f"{p}.mlp.0.bias"])
    out = F.relu(_bn(out, sd, f"{p}.mlp.1"))
    out = F.group_norm(out, 16, sd[f"{p}.out_norm.weight"], sd[f"{p}.out_norm.bias"], EPS)
    m0 = out.t().reshape(1, c, h, w)
    return m0, attn.permute(2, 1, 0).reshape(16, t, h, w)


def _aggregate(e: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """e [T, C, H, W]; channel c uses head c // (C / 16), attention upsampled bilinearly."""
    up = F.interpolate(attn, size=e.shape[-2:], mode="bilinear", align_corners=False)
    per_channel = up.repeat_interleave(e.shape[1] // 16, dim=0)  # [C, T, H, W]
    return (per_channel.transpose(0, 1) * e).sum(dim=0, keepdim=True)


def _up(m, skip, sd, p):
    up = F.conv_transpose2d(m, sd[f"{p}.up.0.weight"], sd[f"{p}.up.0.bias"], stride=2, padding=1)
    up = F.relu(_bn(up, sd, f"{p}.up.1"))
    s = F.relu(
        _bn(
            F.conv2d(skip, sd[f"{p}.skip_conv.0.weight"], sd[f"{p}.skip_conv.0.bias"]),
            sd,
            f"{p}.skip_conv.1",
        )
    )
    y = _conv_norm_relu(
        torch.cat([up, s], dim=1), sd, f"{p}.conv1.conv.0", f"{p}.conv1.conv.1", "batch"
    )
    return y + _conv_norm_relu(y, sd, f"{p}.conv2.conv.0", f"{p}.conv2.conv.1", "batch")


def _utae_last_map(s2: torch.Tensor, dates: torch.Tensor, sd: dict) -> torch.Tensor:
    """s2 [T, 10, 40, 40] of one sample, no padding -> m3 [1, 64, 40, 40]."""
    p = "arch_hr"
    x = _conv_norm_relu(s2, sd, f"{p}.in_conv.conv.conv.0", f"{p}.in_conv.conv.conv.1", "group")
    e = [_conv_norm_relu(x, sd, f"{p}.in_conv.conv.conv.3", f"{p}.in_conv.conv.conv.4", "group")]
    for i in range(3):
        d = f"{p}.down_blocks.{i}"
        x = _conv_norm_relu(e[-1], sd, f"{d}.down.conv.0", f"{d}.down.conv.1", "group", stride=2)
        e.append(_res(x, sd, d, "group"))
    m, attn = _ltae(e[3], dates, sd)
    for i, skip in enumerate((e[2], e[1], e[0])):
        m = _up(m, _aggregate(skip, attn), sd, f"{p}.up_blocks.{i}")
    return m


def reference_forward(sd, aerial, s2, dates, metadata):
    """The official forward at batch size 1 (drop_utae_modality 0: the fusion applied)."""
    n_classes = sd["arch_vhr.segmentation_head.0.weight"].shape[0]
    unet = smp.Unet("resnet34", encoder_weights=None, in_channels=5, classes=n_classes).eval()
    unet.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("arch_vhr.")})
    m3 = _utae_last_map(s2[0], dates[0], sd)
    feats = list(unet.encoder(aerial))
    if metadata is not None:
        v = metadata
        for i in (0, 3, 6):
            v = F.linear(v, sd[f"mtd_mlp.enc_mlp.{i}.weight"], sd[f"mtd_mlp.enc_mlp.{i}.bias"])
            v = F.relu(v) if i < 6 else v
        feats[-1] = feats[-1] + v[:, None, :, None].expand_as(feats[-1])  # v indexes rows
    crop = T.CenterCrop((10, 10))(m3)
    summary = m3[0].mean(dim=(-2, -1))  # batch element 0, full 40 x 40 map
    for k, f in enumerate(feats):
        size = f.shape[-1]
        w, b = (
            sd[f"fm_utae_featmap_cropped.conv_list.{k}.weight"],
            sd[f"fm_utae_featmap_cropped.conv_list.{k}.bias"],
        )
        cropped = F.interpolate(F.conv2d(crop, w, b), size=size, mode="bilinear")
        v = summary
        for i in (0, 3, 6):
            q = f"fm_utae_featmap_collapsed.mlps.{k}.{i}"
            v = F.linear(v, sd[f"{q}.weight"], sd[f"{q}.bias"])
            v = F.relu(v) if i < 6 else v
        collapsed = v.view(1, -1, 1, 1).repeat(1, 1, size, size)
        feats[k] = f + (cropped + collapsed)
    main = unet.segmentation_head(unet.decoder(feats))
    upsampled = F.interpolate(crop, size=aerial.shape[-2:], mode="nearest")
    aux = F.conv2d(upsampled, sd["reshape_utae_output.1.weight"], sd["reshape_utae_output.1.bias"])
    return aux, main


def _card(use_metadata: bool) -> ModelCard:
    return ModelCard(
        name="utt-reference",
        architecture="utt",
        channels=("R", "G", "B", "NIR", "E"),
        normalization=Normalization(divisor=255.0),
        logit_codes=tuple(range(1, 14)),
        sentinel2=Sentinel2Settings(use_metadata=use_metadata),
    )


def _sample(seed: int, size: int, t: int):
    gen = torch.Generator().manual_seed(seed)
    aerial = torch.randint(0, 256, (1, 5, size, size), generator=gen).float() / 255
    s2 = torch.randint(100, 6000, (1, t, 10, 40, 40), generator=gen).float()
    dates = torch.tensor([[120.0, 89.0, 61.0, 30.0, 0.0, -31.0, -61.0, -92.0][:t]])
    return aerial, s2, dates


@pytest.mark.parametrize(
    ("use_metadata", "size", "t"),
    [(True, 512, 6), (False, 64, 8)],
    ids=["metadata-512", "plain-64"],
)
def test_matches_reference_forward(use_metadata, size, t):
    sd = utt_state_dict(metadata=use_metadata, seed=5, fusion_gain=3.0)
    net = build_utt_network(_card(use_metadata), sd)
    aerial, s2, dates = _sample(7, size, t)
    metadata = None
    if use_metadata:
        vec = encode_metadata(652000.0, 6862000.0, 120.0, "UCE-M3", "2020-06-14", "11h20")
        metadata = torch.from_numpy(vec)[None]
    with torch.no_grad():
        aux, main = net(aerial, s2, dates, metadata)
        ref_aux, ref_main = reference_forward(sd, aerial, s2, dates, metadata)
        unfused = net(aerial, None, None, metadata)[1]
    assert (aux - ref_aux).abs().max() <= 1e-5
    assert (main - ref_main).abs().max() <= 1e-3
    # the comparison is not trivial: the Sentinel-2 fusion moves the logits far more than that
    assert (main - unfused).abs().max() > 0.1
    assert ref_aux.abs().max() > 1e-3
