"""Downloading registry weights through huggingface_hub, against a loopback stand-in hub."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from engine.cli import main
from engine.digest import file_sha256
from engine.errors import DownloadError
from engine.models import download
from engine.models.download import download_weights
from engine.models.loader import load_model
from engine.models.registry import load_registry
from tests.fixtures.generate import make_unet_checkpoint
from tests.fixtures.hub_server import HubFiles, hub_server


@pytest.fixture()
def isolated_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("FLAIR_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path


def test_models_download_fetches_into_the_cache_and_predict_uses_it(
    isolated_hub: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    card = load_registry().get("flair-inc-rgb-15cl")
    weights = make_unet_checkpoint(isolated_hub / "w.pth", 3, 19, seed=21).read_bytes()
    hub = HubFiles({(card.source.repo_id, card.source.filename): weights})
    with hub_server(hub) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        assert main(["models", "download", "flair-inc-rgb-15cl", "--progress", "none"]) == 0
        assert any(r.startswith("GET /IGNF/FLAIR-INC_rgb_15cl") for r in hub.requests)
    # the hub is gone: the cached copy serves the registry name
    loaded = load_model("flair-inc-rgb-15cl")
    assert loaded.weights_path.read_bytes() == weights
    assert str(loaded.weights_path).startswith(str(isolated_hub / "cache"))
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert next(m for m in listing["models"] if m["name"] == "flair-inc-rgb-15cl")["cached"]


def test_hash_mismatch_is_refused_and_removed(
    isolated_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = load_registry().get("flair-inc-rgbie-15cl")  # carries the published SHA-256
    hub = HubFiles({(card.source.repo_id, card.source.filename): b"not the published weights"})
    with hub_server(hub) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        with pytest.raises(DownloadError, match="not the published e7be9248"):
            download_weights(card)
    assert download.local_weights(card) is None


def test_matching_hash_is_accepted(isolated_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = load_registry().get("flair-inc-rgb-15cl")
    path = make_unet_checkpoint(isolated_hub / "w.pth", 3, 19, seed=22)
    card = replace(base, source=replace(base.source, sha256=file_sha256(path)))
    hub = HubFiles({(card.source.repo_id, card.source.filename): path.read_bytes()})
    with hub_server(hub) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        assert download_weights(card).read_bytes() == path.read_bytes()


def test_unreachable_hub_says_how_to_get_weights(
    isolated_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    with pytest.raises(DownloadError) as err:
        load_model("flair-inc-rgb-15cl", allow_download=True)
    assert "FLAIR_WEIGHTS_DIR" in str(
        err.value
    ) and "FLAIR-INC_rgb_15cl_resnet34-unet_weights.pth" in str(err.value)


def test_missing_file_on_the_hub(isolated_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with hub_server(HubFiles()) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        with pytest.raises(
            DownloadError, match="could not download the weights of flair-inc-rgb-12cl"
        ):
            download_weights(load_registry().get("flair-inc-rgb-12cl"))
