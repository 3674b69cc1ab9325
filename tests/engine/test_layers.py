"""Layer order inside the engine: every module imports its own layer or the layers below only,
and no imports go round in a loop, not even inside one layer.

The layers (README, Architecture), bottom to top: values, I/O, models, runs, region, entry. Every
import counts, including those inside functions and under `TYPE_CHECKING`: a lazy import is
still a dependency, and a loop through one is still a loop. Loops are looked for between
modules and between the units of `LAYERS` (a package such as `engine.evaluation` counts as one):
two packages of one layer that import each other are a loop even when no module loop closes.
A new module must be placed in `LAYERS`, so the test knows of it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import engine

ENGINE_DIR = Path(engine.__file__).parent

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "values",
        (
            "engine",  # the package itself (version), not its subpackages
            "engine.classes",
            "engine.digest",
            "engine.errors",
            # Translating OS/GDAL failures into `errors`; it imports `errors` only and every I/O
            # module uses it, so it sits beside `errors`, not with the runs.
            "engine.failures",
            "engine.cli_values",
            "engine.protocol",
            "engine.progress",
            "engine.grid",
            "engine.tiling",
            # glibc's malloc settings for a process (the run's, a conversion's child); it
            # imports nothing of the engine
            "engine.memory",
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
    # the networks, the architecture table, and what each family is fed (U-T&T's Sentinel-2
    # inputs: `engine.models.utt`, whose supplier the table names); the runtimes (torch,
    # OpenVINO: `engine.runtime`) sit with the networks they run, and inference asks them
    ("models", ("engine.models", "engine.device", "engine.runtime", "engine.inference")),
    (
        "runs",
        (
            "engine.settings",
            "engine.planning",
            "engine.streaming",
            "engine.pipeline",
            "engine.outputs",
            "engine.evaluation",
            # figures from finished maps (zones, change), beside evaluate; predict and region
            # call them at the end of a run
            "engine.figures",
            "engine.interrupt",
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


def unit_of(module: str) -> str:
    """The `LAYERS` entry a module belongs to (its package, or the module itself)."""
    prefixes = [p for _, group in LAYERS for p in group]
    found = [p for p in prefixes if module == p or (p != "engine" and module.startswith(p + "."))]
    return max(found, key=len) if found else module


def import_graph() -> dict[str, set[str]]:
    """Every engine module -> the engine modules it imports (anywhere in it)."""
    modules = engine_modules()
    known = set(modules)
    return {
        m: {i for i in imports_of(m, p, known) if i in known and i != m} for m, p in modules.items()
    }


def loops(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan), each sorted: every import
    loop, however long."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_loop_finder_finds_loops() -> None:
    """The finder itself, on graphs whose loops are known."""
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert loops({"a": {"b"}, "b": set()}) == []
    assert sorted(loops({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}})) == [
        ["a", "b"],
        ["c", "d"],
    ]


def test_no_import_loops_between_modules() -> None:
    """Not even through a function-level import (the table -> flairhub -> loader -> table
    loop was one)."""
    assert loops(import_graph()) == []


def test_no_import_loops_between_packages() -> None:
    """Two packages of one layer importing each other (U-T&T's inputs and evaluation did) are
    a loop even when no module loop closes."""
    units: dict[str, set[str]] = {}
    for module, imported in import_graph().items():
        units.setdefault(unit_of(module), set()).update(
            unit_of(i) for i in imported if unit_of(i) != unit_of(module)
        )
    assert loops(units) == []


def test_utt_inputs_sit_below_evaluation() -> None:
    """Evaluation feeds U-T&T its FLAIR patches' inputs, so U-T&T's inputs sit in a lower
    layer than evaluation, never beside it (where they once imported each other)."""
    modules = engine_modules()
    utt = [m for m in modules if m.startswith("engine.models.utt")]
    evaluation = [m for m in modules if m.startswith("engine.evaluation")]
    assert utt and evaluation
    assert max(layer_of(m) for m in utt) < min(layer_of(m) for m in evaluation)  # type: ignore[type-var]


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
