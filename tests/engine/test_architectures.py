"""The contract every entry of the architecture table keeps (the way smp tests every model).

For each registered family: a generated checkpoint in its published layout is recognised by its
own detector and by no other, loads strictly through `load_model`, and one forward through
`Predictor` on random tensors gives the map's logits (B, K, H, W) and FLAIR codes; a checkpoint
of another family is refused naming both. A new family without an entry in `CHECKPOINTS` fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelError
from engine.inference import Predictor
from engine.models.architectures import ARCHITECTURES, ExtraInputs, detect_architecture
from engine.models.checkpoint import read_state_dict
from engine.models.loader import load_model
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


# family -> (checkpoint writer, extra inputs for a batch of tiles of a size)
CHECKPOINTS: dict[str, tuple[Callable[[Path], Path], Callable[[int, int], ExtraInputs | None]]] = {
    "unet": (lambda p: make_unet_checkpoint(p / "unet.pth", 5, 19, "flair-inc", seed=3), lambda b, s: None),
    "utt": (lambda p: make_utt_checkpoint(p / "utt.ckpt", metadata=True, seed=4), _extras_utt),
}


def test_every_registered_architecture_has_a_contract_case() -> None:
    assert set(CHECKPOINTS) == set(ARCHITECTURES)


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
    images = np.random.default_rng(1).integers(0, 256, (batch, len(loaded.card.channels), size, size)).astype(np.uint8)
    logits = predictor.logits(images, extras(batch, size))
    assert tuple(logits.shape) == (batch, loaded.card.num_logits, size, size)
    assert np.isfinite(logits.numpy()).all()
    result = predictor.predict(images, extras(batch, size), confidence=True)
    assert result.codes.shape == (batch, size, size)
    assert set(np.unique(result.codes)) <= set(loaded.card.active_codes)


def test_a_checkpoint_of_another_family_is_refused_naming_both(tmp_path: Path) -> None:
    utt = make_utt_checkpoint(tmp_path / "utt.ckpt", metadata=False, seed=1)
    card = tmp_path / "card.json"
    card.write_text('{"name": "my-unet", "architecture": "unet", "channels": ["R","G","B","NIR","E"], '
                    '"normalization": {"divisor": 255.0}, "logit_codes": [1,2,3,4,5,6,7,8,9,10,11,12,19]}')
    with pytest.raises(ModelError, match="holds a U-T&T network but model my-unet is a U-Net"):
        load_model(str(utt), card_path=card, say=lambda *a: None)


def test_a_file_of_no_known_family_is_refused(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "other.pth"
    torch.save({"backbone.layer1.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ModelError, match="holds no network this engine knows"):
        load_model(str(path), say=lambda *a: None)
