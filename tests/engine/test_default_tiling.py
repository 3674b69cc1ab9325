"""The tiling a run gets when none is given: the model card's own, else the engine's 1280/128.

One rule (`engine.planning.plan_run`) for `predict` and every block of `region`: MiT-B5's card
asks for 1024 px tiles (its first-stage attention makes 1280 px tiles cost 2.6 GB), FLAIR-HUB
cards fix theirs at 1024, and a region run leaves the choice to that rule instead of forcing
1280, which a FLAIR-HUB model refuses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio
import torch

from engine.cli import build_parser
from engine.errors import InvalidInput
from engine.io.destination import OutputPaths
from engine.models.loader import LoadedModel
from engine.models.registry import load_registry
from engine.planning import plan_run
from engine.progress import make_reporter
from engine.region.run import _base_settings, _geometry
from engine.region_cli import settings_from_args
from engine.settings import PredictSettings
from tests.fixtures.flairhub_checkpoint import (
    make_flairhub_checkpoint,
    make_irc_orthophoto,
    registry_card,
)
from tests.fixtures.generate import make_orthophoto


@pytest.fixture(scope="module")
def ortho(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiling")
    return make_orthophoto(folder / "rgb.tif", 3000, 3000, 3, seed=4)


def tiling_for(model: str, ortho: Path, **given: int) -> tuple[int, int]:
    """(tile, margin) that `plan_run` picks for a registry model on `ortho`."""
    card = load_registry().get(model).resolved_for_logits(19)
    loaded = LoadedModel(card, torch.nn.Identity(), Path("-"))
    settings = PredictSettings(
        input=ortho, outputs=OutputPaths(ortho.with_name("m.tif")), model=model, **given
    )
    with rasterio.open(ortho) as src:
        plan, _ = plan_run(settings, loaded, src, make_reporter("none"))
    return plan.tiling.tile_size_px, plan.tiling.margin_px


def test_a_flexible_model_gets_its_cards_tile_unless_one_is_given(ortho: Path) -> None:
    mitb5 = "flair-inc-rgb-15cl-mitb5-unet"
    assert load_registry().get(mitb5).default_tile_px == 1024
    assert tiling_for(mitb5, ortho) == (1024, 128)
    assert tiling_for(mitb5, ortho, tile_size_px=512) == (512, 128)
    assert tiling_for("flair-inc-rgb-15cl", ortho) == (1280, 128)  # no card default: 1280


def test_a_fixed_tile_model_keeps_its_tile(ortho: Path) -> None:
    hub = "flair-hub-ir-convnextv2tiny-upernet"
    assert tiling_for(hub, ortho) == (1024, 128)
    with pytest.raises(InvalidInput, match="runs on 1024 px tiles only"):
        tiling_for(hub, ortho, tile_size_px=1280)


def test_region_leaves_the_tiling_and_bands_to_the_model(tmp_path: Path, ortho: Path) -> None:
    """A region with a FLAIR-HUB model on an IRC raster plans 1024/128 tiles and reads NIR, R, G
    from the band descriptions, as `predict` does. Before, it forced 1280 px tiles (refused by
    the model) and ignored descriptions (the IRC raster "lacked NIR")."""
    hub = "flair-hub-ir-convnextv2tiny-upernet"
    card = registry_card(hub)
    checkpoint = make_flairhub_checkpoint(tmp_path / card.source.filename, card, seed=2)
    irc = make_irc_orthophoto(tmp_path / "irc.tif", 1200, seed=5)
    args = build_parser().parse_args(
        ["region", str(tmp_path / "out"), "--input", str(irc), "--model", str(checkpoint)]
    )
    settings = settings_from_args(args)
    assert (settings.run.tile_size_px, settings.run.margin_px) == (None, None)
    base = _base_settings(settings, tmp_path, str(irc), None)
    plan = _geometry(base, make_reporter("none")).plan
    assert (plan.tiling.tile_size_px, plan.tiling.margin_px) == (1024, 128)
    given = build_parser().parse_args(
        [
            "region",
            str(tmp_path / "o"),
            "--input",
            str(ortho),
            "--tile-size",
            "512",
            "--margin",
            "64",
        ]
    )
    run = settings_from_args(given).run
    assert (run.tile_size_px, run.margin_px) == (512, 64)
