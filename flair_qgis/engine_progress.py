"""What the toolbox shows of an engine run's progress: the bar's share per phase, the texts.

The engine reports phases (`start`), fractions and time left (`progress`); `engine_runner`
reads them and this module says where the bar stands and what the text reads, in the
toolbox's words. Kept apart from the process handling so that the wording and the bar's layout
can be read, and changed, in one place.
"""

from __future__ import annotations

# Share of the progress bar each engine phase fills; unknown phases use the whole bar. Before
# the first phase (engine start, model loading) the bar creeps up to LOADING_PERCENT.
LOADING_PERCENT = 3.0
PHASE_RANGES: dict[str, tuple[float, float]] = {
    "sentinel2": (LOADING_PERCENT, 30.0),
    "conversion": (LOADING_PERCENT, 30.0),  # OpenVINO, once per model and tile size
    "inference": (30.0, 92.0),
    "overviews": (92.0, 96.0),
    "polygons": (96.0, 100.0),
}
# What the toolbox's progress text says during each phase; other phases show their name.
LOADING_TEXT = "Starting the FLAIR engine and loading the model\u2026"
# for runs without a model (evaluate, zones, change): `run_engine(..., loading_text=...)`
STARTING_TEXT = "Starting the FLAIR engine\u2026"
PHASE_TEXTS: dict[str, str] = {
    "sentinel2": "Loading Sentinel-2 time series\u2026",
    "conversion": "Converting the model for OpenVINO (once, then cached)\u2026",
    "inference": "Running the model on the tiles\u2026",
    "overviews": "Writing the land-cover map and its overviews\u2026",
    "polygons": "Building polygons\u2026",
}
PHASE_TITLES: dict[str, str] = {
    "inference": "Inference",
    "sentinel2": "Sentinel-2 series",
    "conversion": "Conversion to OpenVINO",
    "overviews": "Overviews",
    "polygons": "Polygons",
}
# time constant of the creeping bar while nothing is reported (loading, a long single tile)
CREEP_S = 15.0


def plural(count: object, unit: str) -> str:
    """ "1 tile", "4 tiles": the engine names its units in the plural."""
    singular = unit[:-1] if unit.endswith("s") else unit
    return f"{count} {singular if count == 1 else unit}"


def remaining_text(seconds: float) -> str:
    """ "about 40 s left", "about 3 min left", "about 1 h 20 min left"."""
    if seconds < 60:
        return f"about {max(5, round(seconds / 5) * 5)} s left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60:02d} min left"


class ProgressMapper:
    """Maps (phase, fraction) to a 0..100 bar; a U-Net run without Sentinel-2 gives inference
    the bar from the end of model loading."""

    def __init__(self, ranges: dict[str, tuple[float, float]] | None = None) -> None:
        self.ranges = dict(PHASE_RANGES if ranges is None else ranges)
        self.loading = LOADING_PERCENT if self.ranges else 0.0
        self.seen_sentinel2 = False

    def percent(self, phase: str, fraction: float) -> float:
        if phase == "sentinel2":
            self.seen_sentinel2 = True
        if phase == "inference" and not self.seen_sentinel2 and phase in self.ranges:
            low, high = self.loading, self.ranges[phase][1]
        elif phase in self.ranges:
            low, high = self.ranges[phase]
        else:
            low, high = 0.0, 100.0
        return low + (high - low) * max(0.0, min(1.0, fraction))
