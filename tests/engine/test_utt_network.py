"""U-T&T network: official key layout, checkpoint loading, batch independence, aerial-only path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from engine.errors import InvalidInput, ModelError
from engine.models.card import ModelCard, Normalization, Sentinel2Settings
from engine.models.utt import (
    UTTConfig,
    UTTNetwork,
    build_utt_network,
    is_utt_state_dict,
    network_state_dict,
)
from tests.fixtures.utt_checkpoint import lightning_checkpoint, make_utt_checkpoint

REFERENCE_KEYS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "utt_keys.txt"
# sha256 of the 492 "model.<key> <shape> <dtype>" lines of shared/reference/utt_keys.txt
OFFICIAL_LAYOUT_SHA256 = "b056eca26cf4dce8d895e6896da4dfce98194ea571813f8aa1e01a42b080cdf4"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _card(use_metadata: bool = True, **overrides) -> ModelCard:
    values = {
        "name": "utt-test",
        "architecture": "utt",
        "channels": ("R", "G", "B", "NIR", "E"),
        "normalization": Normalization(divisor=255.0),
        "logit_codes": tuple(range(1, 14)),
        "sentinel2": Sentinel2Settings(use_metadata=use_metadata),
    }
    values.update(overrides)
    return ModelCard(**values)


def _layout_lines(state: dict) -> list[str]:
    return [
        f"model.{k} {tuple(v.shape)} {str(v.dtype).removeprefix('torch.')}"
        for k, v in state.items()
    ]


@pytest.fixture(scope="module")
def ckpt_mtd() -> dict:
    return lightning_checkpoint(metadata=True, seed=0, fusion_gain=20.0)


@pytest.fixture(scope="module")
def ckpt_plain() -> dict:
    return lightning_checkpoint(metadata=False, seed=1, fusion_gain=20.0)


@pytest.fixture(scope="module")
def net_plain(ckpt_plain) -> UTTNetwork:
    return build_utt_network(_card(use_metadata=False), ckpt_plain["state_dict"])


def test_key_layout_is_the_official_one():
    state = UTTNetwork().state_dict()
    lines = _layout_lines(state)
    assert len(lines) == 492
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == OFFICIAL_LAYOUT_SHA256
    if REFERENCE_KEYS.exists():
        reference = [
            line.strip()
            for line in REFERENCE_KEYS.read_text().splitlines()
            if line.startswith("model.")
        ]
        assert lines == reference


def test_parameter_counts():
    with_mtd = UTTNetwork(UTTConfig(metadata_size=45))
    without = UTTNetwork(UTTConfig(metadata_size=None))
    assert sum(p.numel() for p in with_mtd.parameters()) == 27_260_296
    assert sum(p.numel() for p in without.parameters()) == 27_254_744
    gone = set(with_mtd.state_dict()) - set(without.state_dict())
    assert gone == {f"mtd_mlp.enc_mlp.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}


def test_official_checkpoint_loads_strict(tmp_path, ckpt_mtd):
    path = make_utt_checkpoint(tmp_path / "utt.ckpt", metadata=True, seed=0, fusion_gain=20.0)
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert {"criterion.0.weight", "criterion.1.weight"} <= set(state)
    assert is_utt_state_dict(state)
    net = build_utt_network(_card(), state)
    assert not net.training and net.uses_metadata
    loaded = net.state_dict()
    for key, value in state.items():
        if key.startswith("model."):
            assert torch.equal(loaded[key[len("model.") :]], value), key


def test_stripped_checkpoint_without_metadata(ckpt_plain):
    stripped = network_state_dict(ckpt_plain["state_dict"])
    assert not any(k.startswith(("model.", "criterion.")) for k in stripped)
    net = build_utt_network(_card(use_metadata=False), stripped)
    assert not net.uses_metadata and not hasattr(net, "mtd_mlp")
    # the checkpoint decides; a card that says otherwise only gets a warning, said to the user
    said: list[tuple[str, str]] = []
    net = build_utt_network(
        _card(use_metadata=True), stripped, lambda m, lv="INFO": said.append((m, lv))
    )
    assert not net.uses_metadata
    assert len(said) == 1 and said[0][1] == "WARNING" and "lacks the metadata MLP" in said[0][0]


def test_detects_utt_keys():
    assert is_utt_state_dict(["model.arch_vhr.encoder.conv1.weight"])
    assert is_utt_state_dict(["arch_hr.in_conv.conv.conv.0.weight"])
    assert not is_utt_state_dict(["model.seg_model.encoder.conv1.weight", "criterion.weight"])
    assert not is_utt_state_dict(["encoder.conv1.weight"])


def test_corrupted_checkpoint_gives_one_clear_error(ckpt_mtd):
    state = dict(ckpt_mtd["state_dict"])
    state["model.arch_vhr.encoder.conv1.weight"] = torch.zeros(64, 4, 7, 7)
    del state["model.arch_hr.temporal_encoder.attention_heads.Q"]
    state["model.extra.weight"] = torch.zeros(1)
    with pytest.raises(ModelError) as info:
        build_utt_network(_card(), state)
    message = str(info.value)
    assert "missing keys (1): arch_hr.temporal_encoder.attention_heads.Q" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "shape mismatches (1): arch_vhr.encoder.conv1.weight" in message
    assert "has shape (64, 4, 7, 7), expected (64, 5, 7, 7)" in message
    assert "4 aerial channels, the card lists 5 (R, G, B, NIR, E)" in message


def test_wrong_metadata_width_and_wrong_card(ckpt_mtd):
    state = dict(ckpt_mtd["state_dict"])
    state["model.mtd_mlp.enc_mlp.0.weight"] = torch.zeros(64, 44)
    with pytest.raises(ModelError, match="metadata vector has 44 values"):
        build_utt_network(_card(), state)
    with pytest.raises(ModelError, match="not U-T&T"):
        build_utt_network(_card(architecture="unet"), ckpt_mtd["state_dict"])
    with pytest.raises(ModelError, match="no U-T&T keys"):
        build_utt_network(_card(), {"model.seg_model.encoder.conv1.weight": torch.zeros(1)})


def _inputs(seed: int, t: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    aerial = torch.randint(0, 256, (1, 5, size, size), generator=gen).float() / 255
    s2 = torch.randint(100, 6000, (1, t, 10, 40, 40), generator=gen).float()
    dates = torch.tensor([[120.0, 89.0, 61.0, 30.0, 0.0, -31.0, -61.0][:t]])
    return aerial, s2, dates


def _pad(s2: torch.Tensor, dates: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    extra = t - s2.shape[1]
    return (
        torch.cat([s2, s2.new_zeros(1, extra, *s2.shape[2:])], dim=1),
        torch.cat([dates, dates.new_zeros(1, extra)], dim=1),
    )


def test_each_sample_is_independent_of_its_batch(net_plain):
    samples = [_inputs(10, 3), _inputs(11, 7), _inputs(12, 5)]
    with torch.no_grad():
        alone = [net_plain(a, s, d) for a, s, d in samples]
        padded = [_pad(s, d, 7) for _, s, d in samples]
        aux, main = net_plain(
            torch.cat([a for a, _, _ in samples]),
            torch.cat([s for s, _ in padded]),
            torch.cat([d for _, d in padded]),
        )
        unfused = net_plain(samples[0][0])[1]
    for i, (aux_i, main_i) in enumerate(alone):
        assert torch.allclose(aux[i], aux_i[0], atol=1e-5), i
        assert torch.allclose(main[i], main_i[0], atol=1e-3), i
    # the Sentinel-2 branch does change the result (so the check above means something)
    assert (alone[0][1] - unfused).abs().max() > 0.1


def test_aerial_only_path(net_plain):
    (a0, s0, d0), (a1, s1, d1) = _inputs(20, 4), _inputs(21, 4)
    with torch.no_grad():
        aux, main = net_plain(a0)
        # without metadata, the dropped-modality path is exactly the plain smp U-Net
        assert torch.allclose(main, net_plain.arch_vhr(a0), atol=1e-5)
        assert torch.all(aux == 0) and aux.shape == (1, 13, 64, 64)
        # a sample with no usable date (all frames zero) in a batch takes the same path
        aux_b, main_b = net_plain(
            torch.cat([a0, a1]), torch.cat([torch.zeros_like(s0), s1]), torch.cat([d0 * 0, d1])
        )
        alone1 = net_plain(a1, s1, d1)
        plain_b = net_plain.arch_vhr(torch.cat([a0, a1]))
    # same batch, same kernels: exactly the plain U-Net's output for that sample; against the
    # single-sample run only float noise (oneDNN picks other kernels for a batch of 2:
    # 1.8e-4 on logits of magnitude 63 measured here, for the plain smp U-Net alone too)
    assert torch.allclose(main_b[0], plain_b[0], atol=1e-5)
    assert torch.allclose(main_b[0], main[0], atol=1e-3)
    assert torch.all(aux_b[0] == 0)
    assert torch.allclose(main_b[1], alone1[1][0], atol=1e-3)
    assert torch.allclose(aux_b[1], alone1[0][0], atol=1e-5)


def test_input_checks(ckpt_mtd, net_plain):
    net = build_utt_network(_card(), ckpt_mtd["state_dict"])
    aerial, s2, dates = _inputs(30, 2)
    with pytest.raises(InvalidInput, match="metadata"):
        net(aerial, s2, dates)
    with pytest.raises(InvalidInput, match="512 x 512"):
        net(aerial, s2, dates, torch.zeros(1, 45))
    with pytest.raises(InvalidInput, match=r"\[B, 5, H, W\]"):
        net_plain(aerial[:, :4], s2, dates)
    with pytest.raises(InvalidInput, match="dates"):
        net_plain(aerial, s2, None)
    with pytest.raises(InvalidInput, match="Sentinel-2 input"):
        net_plain(aerial, s2[:, :, :9], dates)
