"""Checkpoint layouts, model cards, the registry, and refusals with one clear message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch

from engine.errors import InputNotFound, ModelError, WeightsNotAvailable
from engine.inference import Predictor
from engine.models.card import ModelCard
from engine.models.checkpoint import read_state_dict
from engine.models.loader import CardOverrides, load_model
from engine.models.registry import load_registry
from tests.fixtures.generate import make_unet_checkpoint, unet_state_dict

REFERENCE_KEYS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "unet_keys.txt"


def test_generated_flair_inc_layout_matches_the_official_key_listing(unet5: Path) -> None:
    if not REFERENCE_KEYS.exists():
        pytest.skip("shared/reference is not beside the repository")
    official = {}
    for line in REFERENCE_KEYS.read_text().splitlines():
        key, shape = line.split(" ", 1)
        official[key] = shape.rsplit(" ", 1)[0]
    ours = {k: str(tuple(v.shape)) for k, v in torch.load(unet5, weights_only=True).items()}
    assert ours == official


@pytest.mark.parametrize("layout", ["flair-inc", "lightning", "plain"])
def test_every_published_layout_loads_as_is(tmp_path: Path, layout: str) -> None:
    path = make_unet_checkpoint(
        tmp_path / f"m.{'ckpt' if layout == 'lightning' else 'pth'}", 4, 19, layout, seed=5
    )
    loaded = load_model(str(path))
    expected = unet_state_dict(4, 19, seed=5)
    got = loaded.network.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert loaded.card.channels == ("R", "G", "B", "NIR")
    assert "criterion.weight" not in read_state_dict(path)


def test_lightning_ckpt_defaults_to_flair1_conventions(unet_lightning: Path) -> None:
    card = load_model(str(unet_lightning)).card
    assert card.normalization.divisor == 255.0 and not card.normalization.mean
    assert card.logit_codes == (*range(1, 13), 19)


def test_one_tile_equals_direct_smp_forward(unet5: Path) -> None:
    """Predictor = argmax of a plain smp forward on the normalised tile, mapped to codes.

    The engine runs channels-last on the CPU (1.4x faster here); the reference forward uses
    the same memory layout, since a different layout changes the float rounding of near ties.
    """
    loaded = load_model(str(unet5), overrides=CardOverrides(inactive_codes=(15, 16, 17, 19)))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(1, 5, 256, 256), dtype=np.uint8)
    predictor = Predictor(loaded, "cpu")
    codes = predictor.predict(images).codes

    reference = smp.Unet("resnet34", encoder_weights=None, in_channels=5, classes=19).eval()
    state = torch.load(unet5, weights_only=True)
    reference.load_state_dict({k.removeprefix("model.seg_model."): v for k, v in state.items()})
    mean = torch.tensor([105.08, 110.87, 101.82, 106.38, 53.26]).view(1, 5, 1, 1)
    std = torch.tensor([52.17, 45.38, 44.00, 39.69, 79.30]).view(1, 5, 1, 1)
    x = (torch.from_numpy(images).float() - mean) / std
    with torch.no_grad():
        reference = reference.to(memory_format=torch.channels_last)
        logits = reference(x.contiguous(memory_format=torch.channels_last))
        plain = reference.to(memory_format=torch.contiguous_format)(x)
    for out in (logits, plain):
        out[:, [14, 15, 16, 18]] = -torch.inf
    expected = (logits.argmax(1) + 1).numpy().astype(np.uint8)
    assert np.array_equal(codes, expected)
    assert (codes == (plain.argmax(1) + 1).numpy()).mean() > 0.999
    assert not np.isin(codes, [15, 16, 17, 19]).any()


def test_registry_cards_are_complete() -> None:
    registry = load_registry()
    assert registry.default == "flair-inc-rgbie-15cl"
    smp_families = ("unet", "fpn", "deeplabv3")
    flair_inc = [c for c in registry.cards if c.architecture in smp_families]  # FLAIR-HUB: its own
    assert len(flair_inc) == 9
    assert {(c.architecture, c.encoder) for c in flair_inc} == {
        ("unet", "resnet34"),
        ("unet", "mit_b5"),
        ("fpn", "resnet34"),
        ("deeplabv3", "resnet34"),
    }
    for card in flair_inc:
        assert card.source is not None and card.source.filename.endswith("_weights.pth")
        assert card.source.repo_id.startswith("IGNF/FLAIR-INC_")
        assert card.res_m == 0.2
        assert len(card.normalization.mean) == len(card.channels)
    rgbie = registry.get("flair-inc-rgbie-15cl")
    assert rgbie.active_codes == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 18)
    twelve = registry.get("flair-inc-rgb-12cl")
    assert twelve.resolved_for_logits(13).active_codes == tuple(range(1, 13))
    with pytest.raises(ModelError, match="knows layouts for"):
        twelve.resolved_for_logits(7)


def test_every_registry_model_runs_on_random_tensors() -> None:
    """Contract: each card builds, accepts its channels and yields only its active codes."""
    from engine.models.loader import LoadedModel
    from engine.models.smp_networks import build_smp

    smp_families = ("unet", "fpn", "deeplabv3")
    for card in (c for c in load_registry().cards if c.architecture in smp_families):
        n_logits = card.num_logits or 13
        resolved = card.resolved_for_logits(n_logits)
        state = unet_state_dict(
            len(card.channels), n_logits, 9, True, card.architecture, card.encoder
        )
        network = build_smp(resolved, state, card.architecture)
        predictor = Predictor(LoadedModel(resolved, network, Path("-")), "cpu")
        images = np.random.default_rng(1).integers(
            0, 256, (2, len(card.channels), 64, 64), dtype=np.uint8
        )
        result = predictor.predict(images, confidence=True, probabilities=True)
        assert result.codes.shape == (2, 64, 64)
        assert set(np.unique(result.codes)) <= set(resolved.active_codes)
        assert result.probabilities.shape == (2, len(resolved.active_codes), 64, 64)
        total = result.probabilities.astype(int).sum(axis=1)
        assert np.abs(total - 100).max() <= len(resolved.active_codes)  # percents, rounded
        assert result.confidence.max() <= 100


def test_registry_weights_missing_say_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("FLAIR_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsNotAvailable) as err:
        load_model("flair-inc-rgb-15cl")
    message = str(err.value)
    assert "models download flair-inc-rgb-15cl" in message
    assert (
        "FLAIR_WEIGHTS_DIR" in message and "FLAIR-INC_rgb_15cl_resnet34-unet_weights.pth" in message
    )


def test_weights_dir_supplies_registry_weights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_unet_checkpoint(tmp_path / "FLAIR-INC_rgb_15cl_resnet34-unet_weights.pth", 3, 19, seed=6)
    monkeypatch.setenv("FLAIR_WEIGHTS_DIR", str(tmp_path))
    loaded = load_model("flair-inc-rgb-15cl")
    assert loaded.card.name == "flair-inc-rgb-15cl" and loaded.card.inactive_codes == (
        15,
        16,
        17,
        19,
    )


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(ModelError, match="known models: flair-inc-rgbie-15cl"):
        load_model("flair-unknown")


def test_missing_checkpoint_file() -> None:
    with pytest.raises(InputNotFound, match="does not exist"):
        load_model("/nonexistent/model.pth")


@pytest.mark.parametrize("content", [b"", b"this is not a checkpoint", None])
def test_corrupt_or_truncated_checkpoint(
    tmp_path: Path, unet3: Path, content: bytes | None
) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(unet3.read_bytes()[:1_000_000] if content is None else content)
    with pytest.raises(ModelError, match=r"empty|not a readable torch checkpoint"):
        load_model(str(path))


def test_channels_differing_from_the_card_name_the_difference(tmp_path: Path, unet3: Path) -> None:
    card = load_registry().get("flair-inc-rgbie-15cl").to_dict()
    card_path = tmp_path / "card.json"
    card_path.write_text(json.dumps(card))
    with pytest.raises(
        ModelError, match=r"takes 3 input channels but the card lists 5 \(R,G,B,NIR,E\)"
    ):
        load_model(str(unet3), card_path=card_path)


def test_logits_differing_from_the_card(unet_lightning: Path, tmp_path: Path) -> None:
    card = load_registry().get("flair-inc-rgbie-15cl").to_dict()
    (tmp_path / "c.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="13 logits but the card"):
        load_model(str(unet_lightning), card_path=tmp_path / "c.json")


def test_wrong_architecture_is_refused(tmp_path: Path) -> None:
    net = smp.Unet("resnet18", encoder_weights=None, in_channels=3, classes=19)
    torch.save(
        {f"model.seg_model.{k}": v for k, v in net.state_dict().items()}, tmp_path / "r18.pth"
    )
    with pytest.raises(ModelError, match="not a resnet34 U-Net"):
        load_model(str(tmp_path / "r18.pth"))


def test_card_rejects_unknown_fields_and_codes() -> None:
    base = load_registry().get("flair-inc-rgb-15cl").to_dict()
    with pytest.raises(ModelError, match="unknown fields"):
        ModelCard.from_dict({**base, "colour": "red"})
    with pytest.raises(ModelError, match="not FLAIR codes"):
        ModelCard.from_dict({**base, "logit_codes": [0, *range(1, 19)]})


def test_sidecar_card_is_used(tmp_path: Path) -> None:
    path = make_unet_checkpoint(tmp_path / "mine.pth", 3, 19, seed=7)
    card = load_registry().get("flair-inc-rgb-15cl").to_dict() | {"name": "mine"}
    (tmp_path / "mine.pth.card.json").write_text(json.dumps(card))
    assert load_model(str(path)).card.name == "mine"


@pytest.mark.parametrize(
    ("channels", "logits", "unknown", "count", "sentence"),
    [
        (7, 19, "channels", 7, "takes 7 channels; say which with --channels"),
        (3, 11, "classes", 11, "has 11 logits; say their FLAIR codes with --classes"),
    ],
)
def test_a_checkpoint_no_default_covers_asks_for_its_channels_or_classes(
    tmp_path: Path, channels: int, logits: int, unknown: str, count: int, sentence: str
) -> None:
    """No default card for 7 channels or 11 logits: the error names the option to give, and its
    fields say what is unknown and how many the file holds (the plugin's words come from them)."""
    path = make_unet_checkpoint(tmp_path / "net.pth", channels, logits, seed=1)
    with pytest.raises(ModelError) as caught:
        load_model(str(path))
    assert str(caught.value) == f"{path} {sentence}"
    assert caught.value.fields == {
        "option": "--card",
        "file": str(path),
        "unknown": unknown,
        "count": count,
    }
