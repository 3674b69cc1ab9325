"""What a person reads of a change run: report.html (figures, heatmap, groups) and change.qml.

The page is one self-contained file: the heatmap is a PNG embedded as base64, the style is
inline, nothing is fetched. Totals of the maps are in km², per-class tables and land take in
hectares. The heatmap is drawn with matplotlib's Agg backend at a fixed size
(`HEATMAP_PNG_SIZE_PX`, width and height), so no display is needed.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.classes import CLASS_BY_CODE, CODES, class_name
from engine.failures import file_name
from engine.figures.change import CHANGE_FACTOR, ChangeResult, Transitions
from engine.figures.land_take import M2_PER_HA, Groups, LandTake
from engine.io.style import paletted_qml

logger = logging.getLogger(__name__)

DPI = 100
HEATMAP_FIGSIZE_IN = (11.0, 9.5)
HEATMAP_PNG_SIZE_PX = (int(HEATMAP_FIGSIZE_IN[0] * DPI), int(HEATMAP_FIGSIZE_IN[1] * DPI))
M2_PER_KM2 = 1_000_000.0
LARGEST_CHANGES = 12


@dataclass(frozen=True)
class ReportInputs:
    """The files compared, as the report names them."""

    before: Path
    after: Path


def change_qml(pairs: Sequence[tuple[int, int]]) -> str:
    """A QGIS paletted style for the change raster: one entry per (before, after) pair present,
    in the after class's colour, labelled "before class → after class"; 0 is transparent."""
    return paletted_qml(
        (b * CHANGE_FACTOR + a, CLASS_BY_CODE[a].colour, f"{class_name(b)} → {class_name(a)}")
        for b, a in pairs
    )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def present_codes(transitions: Transitions) -> list[int]:
    """Codes with some compared area in either map (the heatmap's rows and columns)."""
    counts = transitions.counts
    return [c for c in CODES if counts[c, :].sum() or counts[:, c].sum()]


def _ha_text(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def heatmap_png(transitions: Transitions) -> bytes:
    """The transition matrix in hectares as a PNG: before classes down, after classes across,
    a logarithmic colour scale (the unchanged diagonal dwarfs the changes), empty cells white."""
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plt = _pyplot()
    codes = present_codes(transitions)
    areas_ha = (transitions.areas_m2 / M2_PER_HA)[np.ix_(codes, codes)]
    positive = areas_ha[areas_ha > 0]
    log_scale = positive.size > 0 and positive.min() < positive.max()
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if log_scale else None
    names = [class_name(c) for c in codes]
    k = len(codes)
    fig, ax = plt.subplots(figsize=HEATMAP_FIGSIZE_IN, dpi=DPI)
    try:
        cmap = plt.get_cmap("YlOrRd").with_extremes(bad="#ffffff")
        image = ax.imshow(np.ma.masked_equal(areas_ha, 0), cmap=cmap, norm=norm)
        label = "area (ha, logarithmic scale)" if log_scale else "area (ha)"
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)
        if log_scale:  # plain numbers at 1, 2 and 5 of each decade, not powers of ten
            bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _ha_text(v)))
            bar.ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
        ax.set_xlabel("after: class in the later map")
        ax.set_ylabel("before: class in the earlier map")
        fontsize = 7 if k <= 13 else 5.5
        top = positive.max() if positive.size else 0.0
        for r in range(k):
            for c in range(k):
                value = areas_ha[r, c]
                if value > 0:
                    dark = log_scale and np.log(value / positive.min()) > 0.6 * np.log(
                        top / positive.min()
                    )
                    ax.text(
                        c,
                        r,
                        _ha_text(value),
                        ha="center",
                        va="center",
                        fontsize=fontsize,
                        color="white" if dark else "black",
                    )
        for d in range(k):  # outline the diagonal: unchanged land
            ax.add_patch(
                plt.Rectangle((d - 0.5, d - 0.5), 1, 1, fill=False, edgecolor="#555555", lw=0.8)
            )
        ax.set_title("Transitions between the two maps, area in ha (outlined diagonal: unchanged)")
        fig.subplots_adjust(left=0.2, bottom=0.22, right=0.9, top=0.94)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _table(
    header: Sequence[str] | None, rows: Sequence[Sequence[str]], numeric_from: int = 1
) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header or ())
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(v)}</td>'
            if i >= numeric_from
            else f"<td>{html.escape(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>\n"
        for row in rows
    )
    head_row = f"<tr>{head}</tr>\n" if head else ""
    return f"<table>\n{head_row}{body}</table>\n"


def _classes(codes: Sequence[int]) -> str:
    return ", ".join(f"{c} {class_name(c)}" for c in codes) or "(none)"


def _per_class_rows(transitions: Transitions) -> list[list[str]]:
    areas_ha = transitions.areas_m2 / M2_PER_HA
    rows = []
    for c in present_codes(transitions):
        before, after, kept = areas_ha[c, :].sum(), areas_ha[:, c].sum(), areas_ha[c, c]
        rows.append(
            [
                f"{c} {class_name(c)}",
                f"{before:.4f}",
                f"{after:.4f}",
                f"{after - before:+.4f}",
                f"{before - kept:.4f}",
                f"{after - kept:.4f}",
            ]
        )
    return rows


def _largest_rows(transitions: Transitions) -> list[list[str]]:
    areas_ha = transitions.areas_m2 / M2_PER_HA
    pairs = sorted(transitions.changed_pairs(), key=lambda p: -areas_ha[p])[:LARGEST_CHANGES]
    return [[f"{class_name(b)} → {class_name(a)}", f"{areas_ha[b, a]:.4f}"] for b, a in pairs]


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 72em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.9em; }
"""


def report_html(
    inputs: ReportInputs, result: ChangeResult, land_take: LandTake, groups: Groups
) -> str:
    """The whole report page."""
    t = result.transitions
    grid = result.grid
    compared_km2 = land_take.compared_m2 / M2_PER_KM2
    changed_km2 = land_take.changed_m2 / M2_PER_KM2
    share = land_take.changed_m2 / land_take.compared_m2 if land_take.compared_m2 else 0.0
    alignment = (
        "the other map is aligned to it by nearest class"
        if result.aligned
        else "both maps share it"
    )
    about = _table(
        None,
        [
            ["before (earlier map)", file_name(inputs.before)],
            ["after (later map)", file_name(inputs.after)],
            [
                "grid",
                f"the {result.grid_role} map's: {grid.crs.to_string()}, {grid.res_m:g} m pixels, "
                f"{grid.width} x {grid.height} px; {alignment}",
            ],
        ],
        numeric_from=2,
    )
    totals = _table(
        ["map totals", "km²"],
        [
            ["compared (a class in both maps)", f"{compared_km2:.4f}"],
            [f"changed ({100 * share:.1f} % of compared)", f"{changed_km2:.4f}"],
        ],
    )
    figures = _table(
        ["land take", "ha", "m²"],
        [
            [name.replace("_", " "), f"{m2 / M2_PER_HA:.4f}", f"{m2:.1f}"]
            for name, m2 in land_take.figures()[:3]
        ],
    )
    group_rows = [
        ["artificial", _classes(groups.artificial)],
        ["natural, agricultural or forest", _classes(groups.natural)],
        ["neither (never land take)", _classes(groups.neither)],
    ]
    source = "default groups" if groups.source == "default" else f"groups from {groups.source}"
    png = base64.b64encode(heatmap_png(t)).decode("ascii")
    per_class = _table(
        ["class", "before (ha)", "after (ha)", "net change (ha)", "lost (ha)", "gained (ha)"],
        _per_class_rows(t),
    )
    largest = _largest_rows(t)
    largest_html = (
        _table(["change", "area (ha)"], largest) if largest else "<p>No class changed.</p>\n"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>Land-cover change</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        "<h1>Land-cover change between two maps</h1>\n"
        f"{about}"
        "<h2>Totals</h2>\n"
        f"{totals}"
        "<h2>Land take</h2>\n"
        '<p class="note">Land take: area that went from the natural, agricultural or forest '
        "group to the artificial group; renaturation: the reverse; net: land take less "
        "renaturation. Pixels that are no data in either map are not counted.</p>\n"
        f"{figures}"
        "<h2>Transitions</h2>\n"
        f'<img alt="transition matrix in hectares" src="data:image/png;base64,{png}">\n'
        "<h3>Largest changes</h3>\n"
        f"{largest_html}"
        "<h3>Per class</h3>\n"
        f"{per_class}"
        f"<h2>Groups ({html.escape(source)})</h2>\n"
        f"{_table(['group', 'FLAIR classes'], group_rows, numeric_from=2)}"
        "</body>\n</html>\n"
    )


def write_report_html(
    path: Path, inputs: ReportInputs, result: ChangeResult, land_take: LandTake, groups: Groups
) -> None:
    Path(path).write_text(report_html(inputs, result, land_take, groups), encoding="utf-8")
    logger.debug("wrote %s", path)
