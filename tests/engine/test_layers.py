"""Layer order inside the engine: every module imports its own layer or the layers below only.

The layers (README, Architecture), bottom to top: values, I/O, models, runs, region, entry. Every
import counts, including those inside functions and under `TYPE_CHECKING`: a lazy import is
still a dependency. A new module must be placed in `LAYERS`, so the test knows of it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import engine

ENGINE_DIR = Path(engine.__file__).parent

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "values",
        (
            "engine",  # the package itself (version), not its subpackages
            "engine.classes",
            "engine.errors",
            # Translating OS/GDAL failures into `errors`; it imports `errors` only and every I/O
            # module uses it, so it sits beside `errors`, not with the runs.
            "engine.failures",
            "engine.cli_values",
            "engine.progress",
            "engine.grid",
            "engine.tiling",
        ),
    ),
    (
        "I/O",
        (
            "engine.io",
            "engine.processing_grid",
            "engine.area",
            "engine.stats",
            "engine.polygons",
            "engine.sentinel2",
        ),
    ),
    # the runtimes (torch, OpenVINO) sit with the networks they run; inference asks them
    ("models", ("engine.models", "engine.device", "engine.runtime", "engine.inference")),
    (
        "runs",
        (
            "engine.settings",
            "engine.planning",
            "engine.streaming",
            "engine.pipeline",
            "engine.utt",
            "engine.evaluation",
            # figures from finished maps (zones, change), beside evaluate; predict and region
            # call them at the end of a run
            "engine.figures",
            "engine.interrupt",
            "engine.memory",
        ),
    ),
    # a region run sits above predict: blocks of one grid, each an ordinary predict on Dask
    ("region", ("engine.region",)),
    (
        "entry",
        (
            "engine.cli",
            "engine.predict_cli",
            "engine.region_cli",
            "engine.__main__",
            "engine.health",
        ),
    ),
)

# (importer, imported) pairs that break the order today, each with the issue that removes it.
# Keep it empty where possible; an entry that is no longer needed fails the test.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(ENGINE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def engine_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ENGINE_DIR.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """Index of the module's layer: the longest entry that is the module or a package of it."""
    matches = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or (prefix != "engine" and module.startswith(prefix + "."))
    ]
    return max(matches)[1] if matches else None


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Engine modules that `module` imports (``from pkg import mod`` counts ``pkg.mod``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known}
    return {m for m in found if m == "engine" or m.startswith("engine.")}


def test_every_engine_module_has_a_layer() -> None:
    unplaced = [m for m in engine_modules() if layer_of(m) is None]
    assert not unplaced, f"place these modules in a layer of LAYERS: {unplaced}"


def test_layers_import_downwards_only() -> None:
    modules = engine_modules()
    known = set(modules)
    upward: set[tuple[str, str]] = set()
    for module, path in modules.items():
        own = layer_of(module)
        for imported in imports_of(module, path, known):
            target = layer_of(imported)
            if own is not None and target is not None and target > own:
                upward.add((module, imported))
    unexpected = sorted(upward - set(ALLOWED_UPWARD))
    assert not unexpected, (
        "upward imports ("
        + ", ".join(
            f"{a} [{LAYERS[layer_of(a)][0]}] -> {b} [{LAYERS[layer_of(b)][0]}]"  # type: ignore[index]
            for a, b in unexpected
        )
        + ")"
    )
    stale = sorted(set(ALLOWED_UPWARD) - upward)
    assert not stale, f"allow-list entries no longer needed, remove them: {stale}"


def test_no_module_borrows_another_modules_private_names() -> None:
    modules = engine_modules()
    borrowed = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("engine"):
                names = [
                    a.name
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
                if names and node.module != module:
                    borrowed.append(f"{module} imports {names} from {node.module}")
    assert not borrowed, borrowed


def test_building_run_settings_imports_no_torch() -> None:
    """Parsing options (CLI, plugin-side probes) must stay light: settings import values only."""
    import subprocess
    import sys

    code = "import sys, engine.settings, engine.cli; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
