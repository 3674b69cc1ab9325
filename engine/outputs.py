"""The writer of each entry of the output table (`engine.io.output_table`), and the two steps
`predict` takes with them: claim every asked-for file before any work, write each one from the
finished map before the run's one commit.

The map and its companion rasters (confidence, probabilities) stream through `MapWriter` tile by
tile and are claimed together (`claim_rasters`: the map first, its style sidecars with it); the
other outputs are written here from the finished map, in the table's order (the statistics
first: the polygons and zone writers add their figures to the run's). Every file goes through
the run's `Destinations`: a temporary name, then one commit.

A new output is one entry in the table plus one `Writer` here (where the settings ask for it,
and how it is written).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.grid import Grid
from engine.io.destination import Destinations
from engine.io.map_writer import claim_rasters
from engine.io.output_table import OUTPUTS, Output
from engine.polygons import polygonize
from engine.progress import Reporter
from engine.settings import PredictSettings
from engine.stats import write_stats

POLYGON_BLOCK_PX = 4096


@dataclass
class Finished:
    """What a writer reads: the finished map (under its temporary name until the commit), its
    grid, the run's figures (a writer adds its own), the run's destinations and reporter."""

    map_path: Path
    grid: Grid
    stats: dict[str, Any]
    destinations: Destinations
    reporter: Reporter


def _claim_file(target: Path, destinations: Destinations, entry: Output) -> None:
    destinations.claim(target, entry.what, entry.suffixes)


def _claim_zones(target: Any, destinations: Destinations, entry: Output) -> None:
    target.read()  # a zones layer that cannot serve fails before the model loads
    target.claim(destinations)


def _write_stats(target: Path, done: Finished) -> dict[str, str]:
    write_stats(done.stats, target, done.destinations.temporary(target))
    return {"stats": str(target)}


def _write_polygons(target: Path, done: Finished) -> dict[str, str]:
    reporter = done.reporter
    side = POLYGON_BLOCK_PX
    blocks = -(-done.grid.width // side) * -(-done.grid.height // side)
    reporter.start("polygons", blocks, "blocks")

    def advance() -> None:
        reporter.check_cancelled()
        reporter.advance(1)

    count = polygonize(
        done.map_path, target, done.destinations.temporary(target), POLYGON_BLOCK_PX, advance
    )
    done.stats["polygons"] = count
    return {"polygons": str(target)}


def _write_zones(target: Any, done: Finished) -> dict[str, str]:
    zones = target.read()
    outputs, done.stats["zones"] = target.write(
        done.map_path, zones, done.destinations, done.reporter
    )
    return outputs


@dataclass(frozen=True)
class Writer:
    """How one output is asked for and written.

    `write`: writes it from the finished map, returns its `done` outputs; None for the rasters
    `MapWriter` streams. `target`: where the settings ask for it (a path, a `ZoneTable`; None
    when not asked); left out, the settings' `other_outputs` under the entry's key, which
    `predict`'s option for it fills. `claim`: checks and locks its destination before any
    work."""

    write: Callable[[Any, Finished], dict[str, str]] | None = None
    target: Callable[[PredictSettings], Any] | None = None
    claim: Callable[[Any, Destinations, Output], None] = _claim_file

    def target_in(self, settings: PredictSettings, key: str) -> Any:
        """Where `settings` ask for this output (None: not asked)."""
        if self.target is None:
            return settings.other_outputs.get(key)
        return self.target(settings)


WRITERS: dict[str, Writer] = {
    "output": Writer(target=lambda s: s.outputs.classes),
    "confidence": Writer(target=lambda s: s.outputs.confidence),
    "probabilities": Writer(target=lambda s: s.outputs.probabilities),
    "stats": Writer(_write_stats, lambda s: s.stats),
    "polygons": Writer(_write_polygons, lambda s: s.polygons),
    "zones": Writer(_write_zones, lambda s: s.zones, _claim_zones),
}


def other_outputs() -> tuple[Output, ...]:
    """The table's entries without a field of their own in the settings: `predict` puts their
    files in `PredictSettings.other_outputs`."""
    return tuple(o for o in OUTPUTS if WRITERS[o.key].target is None)


def _asked(settings: PredictSettings) -> list[tuple[Output, Writer, Any]]:
    """The outputs written from the finished map that `settings` ask for, in table order."""
    writers = ((entry, WRITERS[entry.key]) for entry in OUTPUTS)
    asked = ((entry, writer, writer.target_in(settings, entry.key)) for entry, writer in writers)
    return [(e, w, target) for e, w, target in asked if w.write is not None and target]


def claim_outputs(settings: PredictSettings, destinations: Destinations) -> None:
    """Every file the run will write, checked and locked before any work (map first)."""
    claim_rasters(settings.outputs, destinations)
    for entry, writer, target in _asked(settings):
        writer.claim(target, destinations, entry)


def write_outputs(settings: PredictSettings, done: Finished) -> dict[str, str]:
    """Write every output `settings` ask for from the finished map, in table order, each under
    its temporary name (the caller commits); returns them by key."""
    outputs: dict[str, str] = {}
    for _, writer, target in _asked(settings):
        done.reporter.check_cancelled()
        outputs.update(writer.write(target, done))  # type: ignore[misc]  # _asked: written ones
    return outputs
