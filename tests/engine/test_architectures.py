"""The contract every entry of the architecture table keeps (the way smp tests every model).

For each registered family: a generated checkpoint in its published layout is recognised by its
own detector and by no other, loads strictly through `load_model`, and one forward through
`Predictor` on random tensors gives the map's logits (B, K, H, W) and FLAIR codes; a checkpoint
of another family is refused naming both. A new family without an entry in `CHECKPOINTS` fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelError
from engine.inference import Predictor
from engine.models.architectures import ARCHITECTURES, ExtraInputs, detect_architecture
from engine.models.checkpoint import read_state_dict
from engine.models.loader import load_model
from tests.fixtures.flairhub_checkpoint import make_flairhub_checkpoint, registry_card
from tests.fixtures.generate import make_unet_checkpoint
from tests.fixtures.utt_checkpoint import make_utt_checkpoint


def _extras_utt(batch: int, size: int) -> ExtraInputs:
    rng = np.random.default_rng(0)
    t = 3
    return ExtraInputs(
        s2=rng.integers(100, 6000, (batch, t, 10, 40, 40)).astype(np.float32),
        dates=np.tile(np.array([[120.0, 60.0, 0.0]], dtype=np.float32), (batch, 1)),
        metadata=rng.normal(size=(batch, 45)).astype(np.float32),
    )


def _flairhub_with_card(path: Path, name: str, encoder: str, seed: int) -> Path:
    card = replace(
        registry_card(name), name=path.stem, encoder=encoder, tile_size_px=128, margin_px=16
    )
    make_flairhub_checkpoint(path, card, seed=seed)
    path.with_name(path.name + ".card.json").write_text(json.dumps(card.to_dict()))
    return path


# family -> (checkpoint writer, extra inputs for a batch of tiles of a size)
CHECKPOINTS: dict[str, tuple[Callable[[Path], Path], Callable[[int, int], ExtraInputs | None]]] = {
    "unet": (
        lambda p: make_unet_checkpoint(p / "unet.pth", 5, 19, "flair-inc", seed=3),
        lambda b, s: None,
    ),
    "fpn": (
        lambda p: make_unet_checkpoint(p / "fpn.pth", 3, 19, "flair-inc", seed=7, decoder="fpn"),
        lambda b, s: None,
    ),
    "deeplabv3": (
        lambda p: make_unet_checkpoint(
            p / "deeplab.pth", 3, 19, "flair-inc", seed=8, decoder="deeplabv3"
        ),
        lambda b, s: None,
    ),
    "utt": (lambda p: make_utt_checkpoint(p / "utt.ckpt", metadata=True, seed=4), _extras_utt),
    # FLAIR-HUB files with a sidecar card for 128 px tiles (the contract's forward stays fast)
    "flairhub-upernet": (
        lambda p: _flairhub_with_card(
            p / "ir_upernet.safetensors",
            "flair-hub-ir-convnextv2tiny-upernet",
            "convnextv2_tiny",
            5,
        ),
        lambda b, s: None,
    ),
    "flairhub-unet": (
        lambda p: _flairhub_with_card(
            p / "ir_unet.safetensors", "flair-hub-ir-convnextv2base-unet", "convnextv2_tiny", 6
        ),
        lambda b, s: None,
    ),
}


def test_every_registered_architecture_has_a_contract_case() -> None:
    assert set(CHECKPOINTS) == set(ARCHITECTURES)


def test_the_table_cards_and_family_facts_name_the_same_families() -> None:
    """One list: cards accept the families' names, the table gives each its behaviour, and an
    extra input a family names has a supplier."""
    from engine.models import card
    from engine.models.architectures import EXTRA_INPUTS
    from engine.models.families import FAMILIES

    assert tuple(FAMILIES) == card.ARCHITECTURES
    assert set(ARCHITECTURES) == set(FAMILIES)
    for name, entry in ARCHITECTURES.items():
        assert entry.family is FAMILIES[name] and entry.name == name
        kind = entry.family.extra_inputs
        assert (kind is None) == (entry.extra_inputs is None)
        assert kind is None or entry.extra_inputs is EXTRA_INPUTS[kind]
    assert [n for n, a in ARCHITECTURES.items() if a.uses_sentinel2] == ["utt"]


def test_family_facts_load_by_path_without_torch_or_the_engine() -> None:
    """The plugin's way in (`flair_qgis.engine_shared`): the file alone, standard library only;
    the facts are what a run record states (the plugin never tests a name)."""
    code = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("families", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["families"] = module
spec.loader.exec_module(module)
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("engine"))
print(json.dumps({"loaded": loaded, "facts": {n: f.facts() for n, f in module.FAMILIES.items()}}))
"""
    families = Path(__file__).resolve().parents[2] / "engine" / "models" / "families.py"
    done = subprocess.run(
        [sys.executable, "-c", code, str(families)], capture_output=True, text=True, check=True
    )
    answer = json.loads(done.stdout)
    assert answer["loaded"] == []
    facts = answer["facts"]
    assert facts["unet"] == {
        "architecture": "unet",
        "title": "a U-Net",
        "decoder": "U-Net",
        "unet": True,
        "fixed_tile": False,
        "uses_sentinel2": False,
    }
    assert [n for n, f in facts.items() if f["uses_sentinel2"]] == ["utt"]
    assert [n for n, f in facts.items() if f["unet"]] == ["unet", "flairhub-unet"]
    assert {n for n, f in facts.items() if f["fixed_tile"]} == {
        "utt",
        "flairhub-upernet",
        "flairhub-unet",
    }


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architecture_contract(tmp_path: Path, name: str) -> None:
    write, extras = CHECKPOINTS[name]
    path = write(tmp_path)
    state = read_state_dict(path)
    family = ARCHITECTURES[name]
    assert detect_architecture(state.keys(), path) is family
    assert [a.name for a in ARCHITECTURES.values() if a.holds(state.keys())][0] == name
    loaded = load_model(str(path), say=lambda *a: None)
    assert loaded.architecture is family and loaded.card.architecture == name
    size = loaded.card.tile_size_px if family.fixed_tile else 64
    predictor = Predictor(loaded, device="cpu")
    batch = 2
    images = (
        np.random.default_rng(1)
        .integers(0, 256, (batch, len(loaded.card.channels), size, size))
        .astype(np.uint8)
    )
    logits = predictor.logits(images, extras(batch, size))
    assert tuple(logits.shape) == (batch, loaded.card.num_logits, size, size)
    assert np.isfinite(logits).all()
    result = predictor.predict(images, extras(batch, size), confidence=True)
    assert result.codes.shape == (batch, size, size)
    assert set(np.unique(result.codes)) <= set(loaded.card.active_codes)


def test_a_checkpoint_of_another_family_is_refused_naming_both(tmp_path: Path) -> None:
    utt = make_utt_checkpoint(tmp_path / "utt.ckpt", metadata=False, seed=1)
    card = tmp_path / "card.json"
    card.write_text(
        '{"name": "my-unet", "architecture": "unet", "channels": ["R","G","B","NIR","E"], '
        '"normalization": {"divisor": 255.0}, "logit_codes": [1,2,3,4,5,6,7,8,9,10,11,12,19]}'
    )
    with pytest.raises(ModelError, match="holds a U-T&T network but model my-unet is a U-Net"):
        load_model(str(utt), card_path=card, say=lambda *a: None)


def test_a_file_of_no_known_family_is_refused(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "other.pth"
    torch.save({"backbone.layer1.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ModelError, match="holds no network this engine knows"):
        load_model(str(path), say=lambda *a: None)


def test_an_older_smp_deeplabv3_layout_loads_as_todays(tmp_path: Path) -> None:
    """smp < 0.5 kept DeepLabV3's decoder as a Sequential (decoder.0/1/2): renamed, then strict."""
    import torch

    path = make_unet_checkpoint(
        tmp_path / "new.pth", 3, 19, "flair-inc", seed=8, decoder="deeplabv3"
    )
    state = torch.load(path, weights_only=True)
    renames = (
        ("decoder.aspp.", "decoder.0."),
        ("decoder.conv.", "decoder.1."),
        ("decoder.bn.", "decoder.2."),
    )
    old = {}
    for key, value in state.items():
        for new_part, old_part in renames:
            key = key.replace(new_part, old_part)
        old[key] = value
    assert "model.seg_model.decoder.0.convs.0.0.weight" in old
    torch.save(old, tmp_path / "old.pth")
    a = load_model(str(tmp_path / "new.pth"), say=lambda *a: None)
    b = load_model(str(tmp_path / "old.pth"), say=lambda *a: None)
    assert b.card.architecture == "deeplabv3"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(a.network(x), b.network(x))


def test_a_mit_b5_unet_is_recognised_by_its_encoder(tmp_path: Path) -> None:
    """FLAIR-INC's MiT-B5 U-Net: the card is built from the tensors with encoder mit_b5."""
    path = make_unet_checkpoint(tmp_path / "mit.pth", 3, 19, "flair-inc", seed=2, encoder="mit_b5")
    loaded = load_model(str(path), say=lambda *a: None)
    assert loaded.card.architecture == "unet" and loaded.card.encoder == "mit_b5"
    result = Predictor(loaded, device="cpu").predict(
        np.random.default_rng(3).integers(0, 256, (1, 3, 64, 64)).astype(np.uint8)
    )
    assert result.codes.shape == (1, 64, 64)


def test_an_fpn_checkpoint_is_not_taken_for_a_unet(tmp_path: Path) -> None:
    path = make_unet_checkpoint(tmp_path / "fpn.pth", 3, 19, "flair-inc", seed=7, decoder="fpn")
    card = tmp_path / "card.json"
    card.write_text(
        '{"name": "my-unet", "architecture": "unet", "channels": ["R","G","B"], '
        '"normalization": {"divisor": 255.0}, "logit_codes": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,'
        "15,16,17,18,19]}"
    )
    with pytest.raises(ModelError, match="holds an FPN but model my-unet is a U-Net"):
        load_model(str(path), card_path=card, say=lambda *a: None)
