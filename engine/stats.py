"""Class-area statistics of a land-cover map, from the pixel counts gathered while writing."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.classes import FLAIR_CLASSES, N_CODES, NODATA_CODE
from engine.failures import write_failure
from engine.io.output_table import output

STATS_SUFFIXES = output("stats").suffixes  # .json, .csv


def class_areas(counts: np.ndarray, pixel_area_m2: float) -> dict[str, Any]:
    """Area in m2, ha and percent of the mapped (non-nodata) area for each class, plus nodata."""
    counts = np.asarray(counts, dtype=np.int64)
    mapped = int(counts[1:N_CODES].sum())
    rows = []
    for c in FLAIR_CLASSES:
        n = int(counts[c.code])
        m2 = n * pixel_area_m2
        rows.append(
            {
                "code": c.code,
                "name": c.name,
                "pixels": n,
                "area_m2": round(m2, 3),
                "area_ha": round(m2 / 10_000, 6),
                "percent": round(100.0 * n / mapped, 4) if mapped else 0.0,
            }
        )
    nodata = int(counts[NODATA_CODE])
    return {
        "pixel_area_m2": pixel_area_m2,
        "mapped_area_m2": round(mapped * pixel_area_m2, 3),
        "mapped_area_ha": round(mapped * pixel_area_m2 / 10_000, 6),
        "nodata_pixels": nodata,
        "nodata_area_m2": round(nodata * pixel_area_m2, 3),
        "classes": rows,
    }


def write_stats(stats: dict[str, Any], path: Path, temp: Path) -> None:
    """Write statistics for `path` as JSON or CSV (by its suffix) into `temp`, the name its
    destination claimed; the run's commit renames it."""
    try:
        _write(stats, Path(path), Path(temp))
    except OSError as exc:
        raise write_failure(exc, path) from None


def _write(stats: dict[str, Any], path: Path, temp: Path) -> None:
    if path.suffix.lower() == ".json":
        temp.write_text(json.dumps(stats, indent=2))
    else:
        with open(temp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["code", "name", "pixels", "area_m2", "area_ha", "percent"])
            for row in stats["classes"]:
                writer.writerow(
                    [row[k] for k in ("code", "name", "pixels", "area_m2", "area_ha", "percent")]
                )
            writer.writerow([0, "no data", stats["nodata_pixels"], stats["nodata_area_m2"], "", ""])
