"""The models the MODEL parameter offers, read from the engine's own registry file.

The engine is the authority on its models: its `engine/models/cards/registry.json` is read here
(the copy shipped in the plugin zip, else the repository's), never copied by hand, so a model
added to the engine appears in the dialog without a plugin change. The first option,
"Automatic", lets the engine pick the best model the layer's bands can feed (`--model auto`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

PLUGIN_DIR = Path(__file__).resolve().parent
REGISTRY_RELATIVE = Path("engine") / "models" / "cards" / "registry.json"
AUTO = "auto"


class RegistryModel(NamedTuple):
    """A model the engine knows by name."""

    name: str
    title: str
    channels: tuple[str, ...]
    architecture: str = "unet"


AUTOMATIC = RegistryModel(AUTO, "Automatic: the best model the layer's bands can feed", (), "")


def registry_file() -> Path | None:
    """The registry the plugin reads: `engine_src/` in the zip, else the repository's engine."""
    for root in (PLUGIN_DIR / "engine_src", PLUGIN_DIR.parent):
        if (root / REGISTRY_RELATIVE).is_file():
            return root / REGISTRY_RELATIVE
    return None


def read_registry(path: Path) -> tuple[RegistryModel, ...]:
    """The models of a registry file, in its order (entries without a name are skipped)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    models = []
    for entry in document.get("models", []):
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        models.append(
            RegistryModel(
                str(entry["name"]),
                str(entry.get("title") or entry["name"]),
                tuple(str(c) for c in entry.get("channels", ())),
                str(entry.get("architecture", "unet")),
            )
        )
    return tuple(models)


@lru_cache(maxsize=1)
def model_choices() -> tuple[RegistryModel, ...]:
    """ "Automatic" then the registry's models; only "Automatic" when no registry is found
    (the engine then still knows its models by name)."""
    path = registry_file()
    try:
        registered = read_registry(path) if path is not None else ()
    except (OSError, ValueError):
        registered = ()
    return (AUTOMATIC, *registered)


DEFAULT_MODEL_INDEX = 0


def model_options() -> list[str]:
    """Labels for the MODEL enum: "Automatic", then each model with its channels."""
    labels = [AUTOMATIC.title]
    for model in model_choices()[1:]:
        labels.append(f"{model.title} ({model.name}; {','.join(model.channels)})")
    return labels
