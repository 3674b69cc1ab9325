"""The registry models the MODEL parameter offers (the engine stays the authority on them)."""

from __future__ import annotations

from typing import NamedTuple


class RegistryModel(NamedTuple):
    """A model the engine knows by name."""

    name: str
    title: str
    channels: tuple[str, ...]
    architecture: str = "unet"


REGISTRY_MODELS: tuple[RegistryModel, ...] = (
    RegistryModel("flair-inc-rgbie-15cl", "FLAIR-INC U-Net, RGB+NIR+elevation, 15 classes",
                  ("R", "G", "B", "NIR", "E")),
    RegistryModel("flair-inc-rgbie-12cl", "FLAIR-INC U-Net, RGB+NIR+elevation, 12 classes",
                  ("R", "G", "B", "NIR", "E")),
    RegistryModel("flair-inc-rgbi-15cl", "FLAIR-INC U-Net, RGB+NIR, 15 classes",
                  ("R", "G", "B", "NIR")),
    RegistryModel("flair-inc-rgbi-12cl", "FLAIR-INC U-Net, RGB+NIR, 12 classes",
                  ("R", "G", "B", "NIR")),
    RegistryModel("flair-inc-rgb-15cl", "FLAIR-INC U-Net, RGB, 15 classes", ("R", "G", "B")),
    RegistryModel("flair-inc-rgb-12cl", "FLAIR-INC U-Net, RGB, 12 classes", ("R", "G", "B")),
)

DEFAULT_MODEL_INDEX = 0


def model_options() -> list[str]:
    """Labels for the MODEL enum, in registry order."""
    return [f"{m.title} ({m.name})" for m in REGISTRY_MODELS]
