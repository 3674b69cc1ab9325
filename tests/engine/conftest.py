"""Shared, seeded fixtures for the engine tests: checkpoints in official layouts and rasters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import engine.runtime  # noqa: F401  (first: OpenVINO's telemetry stays off for the tests too)
from tests.fixtures.bdortho import RegionCase, make_region_case
from tests.fixtures.generate import make_orthophoto, make_unet_checkpoint

REPO = Path(__file__).resolve().parents[2]
REALDATA = REPO.parent / "shared" / "realdata"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# The engine's default runtime is auto: OpenVINO on the CPU, converted once per model and tile.
# Most tests compare maps with torch's own logits bit for bit, so they run torch unless they ask
# for a backend (tests/engine/test_runtime_*.py do); conversions go to a folder of the session.
os.environ.setdefault("FLAIR_BACKEND", "torch")


@pytest.fixture(scope="session", autouse=True)
def runtime_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conversion cache for the session (FLAIR_CACHE_DIR), never the user's own."""
    folder = tmp_path_factory.mktemp("flair-cache")
    os.environ["FLAIR_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="session")
def unet5(ckpt_dir: Path) -> Path:
    """FLAIR-INC layout, 5 channels, 19 logits."""
    return make_unet_checkpoint(ckpt_dir / "rgbie_weights.pth", 5, 19, "flair-inc", seed=1)


@pytest.fixture(scope="session")
def unet3(ckpt_dir: Path) -> Path:
    """FLAIR-INC layout, 3 channels (RGB), 19 logits."""
    return make_unet_checkpoint(ckpt_dir / "rgb_weights.pth", 3, 19, "flair-inc", seed=2)


@pytest.fixture(scope="session")
def unet_lightning(ckpt_dir: Path) -> Path:
    """FLAIR-1 Lightning layout, 5 channels, 13 logits, criterion buffer."""
    return make_unet_checkpoint(ckpt_dir / "flair1.ckpt", 5, 13, "lightning", seed=3)


@pytest.fixture(scope="session")
def ortho5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5-band 0.2 m orthophoto in Lambert-93, 700 x 600 px."""
    return make_orthophoto(tmp_path_factory.mktemp("ortho") / "ortho5.tif", 700, 600, 5, seed=4)


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is not beside the repository")
    return REALDATA


@pytest.fixture(scope="session")
def region_case(tmp_path_factory: pytest.TempPathFactory) -> RegionCase:
    """One delivery, checkpoint and reference map for every region test module of a session."""
    return make_region_case(tmp_path_factory.mktemp("region_case"))
