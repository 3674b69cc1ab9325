"""U-T&T building blocks checked by hand: date code, crop, nearest upsampling, padding masks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.models.utt.fusion import (
    CollapsedFusion,
    center_crop,
    collapsed_hidden_widths,
    crop_offset,
)
from engine.models.utt.ltae import LTAE2d, masked_group_norm
from engine.models.utt.network import UTTConfig, UTTNetwork
from engine.models.utt.positional import encode_dates
from engine.models.utt.utae import UTAE, aggregate_att_group, per_frame


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _randomise_batchnorm(module: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


def test_date_code_by_hand():
    dates = torch.tensor([[30.0, -61.0]])
    code = encode_dates(dates, d=16, period=1000.0, repeat=16)
    assert code.shape == (1, 2, 256)
    for t_idx, t in enumerate((30.0, -61.0)):
        for j in range(16):
            angle = t / 1000.0 ** (2 * (j // 2) / 16)
            want = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert code[0, t_idx, j].item() == pytest.approx(want, abs=1e-6)
        # the 16-value block is tiled once per head
        assert torch.equal(code[0, t_idx].view(16, 16), code[0, t_idx, :16].expand(16, 16))
    # offset 0: sin 0 = 0 and cos 0 = 1 alternate
    zero = encode_dates(torch.zeros(1, 1), d=16, repeat=1)[0, 0]
    assert zero.tolist() == [0.0, 1.0] * 8


def test_center_crop_keeps_rows_and_columns_15_to_24():
    assert crop_offset(40) == 15
    grid = torch.arange(40 * 40).view(1, 1, 40, 40)
    crop = center_crop(grid)
    assert crop.shape == (1, 1, 10, 10)
    assert crop[0, 0, 0, 0].item() == 15 * 40 + 15
    assert crop[0, 0, -1, -1].item() == 24 * 40 + 24
    # torchvision rounds the offset half to even: (11 - 10) / 2 = 0.5 -> 0
    assert crop_offset(11) == 0
    with pytest.raises(ValueError):
        center_crop(torch.zeros(1, 1, 8, 8))


@pytest.fixture(scope="module")
def small_net() -> UTTNetwork:
    torch.manual_seed(0)
    return UTTNetwork(UTTConfig(metadata_size=None)).eval()


def test_aux_head_nearest_blocks(small_net):
    conv = small_net.reshape_utae_output[1]
    crop = torch.arange(10.0).view(1, 1, 1, 10).expand(1, 64, 10, 10).contiguous()
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0] = 1.0
        out = small_net.aux_head(crop, (512, 512))[0, 0, 0]
    widths = torch.unique_consecutive(out, return_counts=True)[1].tolist()
    assert widths == [52, 51, 51, 51, 51, 52, 51, 51, 51, 51]
    # legacy nearest: source column floor(dst * 10 / 512)
    assert out.tolist() == [float(math.floor(c * 10 / 512)) for c in range(512)]


def test_aux_head_equals_upsample_then_conv():
    torch.manual_seed(1)
    net_head = nn.Sequential(nn.Upsample(size=(512, 512), mode="nearest"), nn.Conv2d(64, 13, 1))
    crop = torch.randn(2, 64, 10, 10)
    with torch.no_grad():
        official = net_head(crop)
        ours = F.interpolate(net_head[1](crop), size=(512, 512), mode="nearest")
    assert torch.allclose(ours, official, atol=1e-6)


def test_collapsed_fusion_widths():
    assert collapsed_hidden_widths(64, 5) == (45, 26)
    assert collapsed_hidden_widths(64, 64) == (128, 128)
    assert collapsed_hidden_widths(64, 128) == (85, 106)
    assert collapsed_hidden_widths(64, 256) == (128, 192)
    assert collapsed_hidden_widths(64, 512) == (213, 362)
    fusion = CollapsedFusion(64, [5, 64, 64, 128, 256, 512])
    assert [m[6].out_features for m in fusion.mlps] == [5, 64, 64, 128, 256, 512]
    out = fusion(torch.randn(3, 64))
    assert [tuple(o.shape) for o in out][0] == (3, 5, 1, 1)


def test_masked_group_norm_matches_group_norm_without_padding():
    torch.manual_seed(2)
    norm = nn.GroupNorm(16, 128)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    x = torch.randn(7, 5, 128)
    plain = norm(x.permute(0, 2, 1)).permute(0, 2, 1)
    masked = masked_group_norm(x, torch.ones(7, 5, dtype=torch.bool), norm)
    assert torch.allclose(masked, plain, atol=1e-5)
    # with dates 3 and 4 padded, only dates 0..2 count
    valid = torch.tensor([[True, True, True, False, False]] * 7)
    part = masked_group_norm(x, valid, norm)[:, :3]
    alone = norm(x[:, :3].permute(0, 2, 1)).permute(0, 2, 1)
    assert torch.allclose(part, alone, atol=1e-5)


def test_ltae_padded_dates_get_no_attention_and_change_nothing():
    torch.manual_seed(3)
    ltae = LTAE2d().eval()
    _randomise_batchnorm(ltae)
    x = torch.randn(1, 3, 128, 5, 5)
    dates = torch.tensor([[100.0, 20.0, -40.0]])
    padded_x = torch.cat([x, torch.zeros(1, 2, 128, 5, 5)], dim=1)
    padded_dates = torch.cat([dates, torch.zeros(1, 2)], dim=1)
    pad = torch.tensor([[False, False, False, True, True]])
    with torch.no_grad():
        out, attn = ltae(x, dates)
        pout, pattn = ltae(padded_x, padded_dates, pad_mask=pad)
    assert torch.all(pattn[:, :, 3:] == 0)
    assert torch.allclose(pattn[:, :, :3], attn, atol=1e-6)
    assert torch.allclose(pout, out, atol=1e-5)
    assert torch.allclose(attn.sum(dim=2), torch.ones(16, 1, 5, 5), atol=1e-6)


def test_per_frame_leaves_padded_frames_at_zero():
    block = nn.Conv2d(2, 3, 1)
    nn.init.constant_(block.bias, 5.0)
    x = torch.randn(2, 3, 2, 4, 4)
    x[1, 2] = 0
    out = per_frame(block, x)
    assert torch.all(out[1, 2] == 0)
    assert torch.allclose(out[0, 0], block(x[0, 0:1])[0])


def test_att_group_aggregation_by_hand():
    attn = torch.rand(16, 1, 2, 5, 5)
    x = torch.randn(1, 2, 32, 5, 5)
    out = aggregate_att_group(x, attn, torch.ones(1, 2, dtype=torch.bool))
    # channel c belongs to head c // 2 (32 channels, 16 heads)
    want = torch.stack([(attn[c // 2, 0] * x[0, :, c]).sum(dim=0) for c in range(32)])
    assert torch.allclose(out[0], want, atol=1e-6)


def test_utae_padded_batch_equals_each_sample_alone():
    torch.manual_seed(4)
    utae = UTAE().eval()
    _randomise_batchnorm(utae)
    a = torch.rand(1, 2, 10, 40, 40) * 3000 + 100
    b = torch.rand(1, 4, 10, 40, 40) * 3000 + 100
    da, db = torch.tensor([[90.0, 0.0]]), torch.tensor([[120.0, 61.0, -31.0, -92.0]])
    batch = torch.cat([torch.cat([a, torch.zeros(1, 2, 10, 40, 40)], dim=1), b])
    dates = torch.cat([torch.cat([da, torch.zeros(1, 2)], dim=1), db])
    with torch.no_grad():
        together = utae(batch, dates)
        alone_a, alone_b = utae(a, da), utae(b, db)
    for k in range(4):
        assert torch.allclose(together[k][0], alone_a[k][0], atol=1e-4)
        assert torch.allclose(together[k][1], alone_b[k][0], atol=1e-4)
    assert [tuple(m.shape[1:]) for m in together] == [
        (128, 5, 5),
        (128, 10, 10),
        (64, 20, 20),
        (64, 40, 40),
    ]
