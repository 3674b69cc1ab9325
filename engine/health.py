"""`python -m engine.health`: is this environment able to run the engine, and which version?

It imports nothing heavy at module level, so it still answers in an environment whose
installation stopped half way (no numpy, no torch): then it names the missing packages instead
of a run failing with an unexpected ModuleNotFoundError. Prints one JSON object; exit code 0
when everything imports, 1 otherwise.

`--quick` (what the QGIS plugin asks before a session's first run) finds each package and reads
its installed version without importing it: a fraction of a second, where importing torch,
torchvision and the rest takes seconds. The full check (every package imported, so a broken
wheel shows) is what the plugin asks when a run fails in a way the engine did not foresee.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import sys
from dataclasses import asdict, dataclass, field

from engine import __version__

# (module to import, distribution to install): what `predict` and `evaluate` need at run time
DEPENDENCIES: tuple[tuple[str, str], ...] = (
    ("numpy", "numpy"),
    ("rasterio", "rasterio"),
    ("pyproj", "pyproj"),
    ("shapely", "shapely"),
    ("torch", "torch"),
    ("torchvision", "torchvision"),
    ("segmentation_models_pytorch", "segmentation-models-pytorch"),
    ("huggingface_hub", "huggingface_hub"),
    ("safetensors", "safetensors"),
    ("geopandas", "geopandas"),
    ("pyogrio", "pyogrio"),
    ("matplotlib", "matplotlib"),
)


@dataclass(frozen=True)
class Health:
    """The engine's version, each dependency's version, and what failed to import (why)."""

    version: str
    python: str
    packages: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing


def check(dependencies: tuple[tuple[str, str], ...] = DEPENDENCIES) -> Health:
    """Import every dependency; an import error of any kind counts as missing, with its text."""
    packages: dict[str, str] = {}
    missing: dict[str, str] = {}
    for module, distribution in dependencies:
        try:
            imported = importlib.import_module(module)
        except Exception as exc:  # a broken wheel raises OSError or ImportError alike
            missing[distribution] = f"{type(exc).__name__}: {exc}"
        else:
            packages[distribution] = str(getattr(imported, "__version__", "?"))
    return Health(__version__, sys.version.split()[0], packages, missing)


def check_quick(dependencies: tuple[tuple[str, str], ...] = DEPENDENCIES) -> Health:
    """Find every dependency and read its installed version, importing none of them: a
    package that is not installed, or whose files are gone, counts as missing."""
    packages: dict[str, str] = {}
    missing: dict[str, str] = {}
    for module, distribution in dependencies:
        try:
            found = importlib.util.find_spec(module) is not None
            version = importlib.metadata.version(distribution)
        except (ImportError, ValueError, importlib.metadata.PackageNotFoundError) as exc:
            missing[distribution] = f"{type(exc).__name__}: {exc}"
            continue
        if not found:
            missing[distribution] = f"ModuleNotFoundError: No module named {module!r}"
        else:
            packages[distribution] = version
    return Health(__version__, sys.version.split()[0], packages, missing)


def main(argv: list[str] | None = None) -> int:
    """Print the health report as JSON; exit code 1 when a dependency is missing."""
    args = sys.argv[1:] if argv is None else argv
    health = check_quick() if "--quick" in args else check()
    print(json.dumps({**asdict(health), "ok": health.ok}))
    return 0 if health.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
