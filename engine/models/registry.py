"""The registry of known public checkpoints, each with its model card."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from engine.errors import ModelError
from engine.models.card import ModelCard


@dataclass(frozen=True)
class Registry:
    """Named model cards and the default model's name."""

    cards: tuple[ModelCard, ...]
    default: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cards)

    def get(self, name: str) -> ModelCard:
        """The card called `name`; an unknown name lists the known ones."""
        for card in self.cards:
            if card.name == name:
                return card
        raise ModelError(
            f"unknown model {name!r}; known models: {', '.join(self.names)} "
            "(or give the path of a checkpoint file)"
        )

    def __contains__(self, name: object) -> bool:
        return name in self.names


def load_registry() -> Registry:
    """Read the registry shipped with the engine (engine/models/cards/registry.json)."""
    text = resources.files("engine.models").joinpath("cards/registry.json").read_text()
    data = json.loads(text)
    cards = tuple(ModelCard.from_dict(d) for d in data["models"])
    registry = Registry(cards=cards, default=data["default"])
    registry.get(registry.default)
    return registry
