"""Report figures drawn with matplotlib's Agg backend (no display needed).

Figures have fixed sizes (no tight bounding box) so their pixel size is known:
`CONFUSION_PNG_SIZE_PX` and `IOU_PNG_SIZE_PX`, (width, height).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from engine.evaluation.metrics import Metrics

logger = logging.getLogger(__name__)

DPI = 100
CONFUSION_FIGSIZE_IN = (12.0, 10.5)
IOU_FIGSIZE_IN = (12.0, 6.0)
CONFUSION_PNG_SIZE_PX = (int(CONFUSION_FIGSIZE_IN[0] * DPI), int(CONFUSION_FIGSIZE_IN[1] * DPI))
IOU_PNG_SIZE_PX = (int(IOU_FIGSIZE_IN[0] * DPI), int(IOU_FIGSIZE_IN[1] * DPI))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (recall on the diagonal); rows without pixels stay NaN."""
    m = np.asarray(matrix, dtype=np.float64)
    sums = m.sum(axis=1, keepdims=True)
    out = np.full(m.shape, np.nan)
    np.divide(m, sums, out=out, where=sums > 0)
    return out


def plot_confusion(metrics: Metrics, path: Path, title: str = "") -> Path:
    """The row-normalised confusion matrix, classes named, values in percent."""
    plt = _pyplot()
    norm = row_normalised(metrics.matrix)
    names = list(metrics.nomenclature.class_names)
    k = len(names)
    fig, ax = plt.subplots(figsize=CONFUSION_FIGSIZE_IN, dpi=DPI)
    try:
        cmap = plt.get_cmap("Blues").copy()
        cmap.set_bad("#e6e6e6")  # rows without reference pixels
        image = ax.imshow(np.ma.masked_invalid(norm), cmap=cmap, vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of reference row")
        ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("reference")
        fontsize = 7 if k <= 13 else 5.5
        for r in range(k):
            if math.isnan(norm[r, 0]):
                continue
            for c in range(k):
                value = norm[r, c]
                if value >= 0.005:
                    ax.text(
                        c,
                        r,
                        f"{100 * value:.0f}",
                        ha="center",
                        va="center",
                        fontsize=fontsize,
                        color="white" if value > 0.5 else "black",
                    )
        ax.set_title(
            title
            or f"Confusion matrix, row-normalised, % ({metrics.nomenclature.name}; "
            "grey rows: class absent from the reference)"
        )
        fig.subplots_adjust(left=0.2, bottom=0.22, right=0.95, top=0.94)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    logger.debug("wrote %s", path)
    return path


def plot_iou_bars(metrics: Metrics, path: Path, title: str = "") -> Path:
    """Per-class IoU bars in the FLAIR palette; undefined IoU marked "n/a"."""
    fig = iou_bars_figure(metrics, title)
    try:
        fig.savefig(path, dpi=DPI)
    finally:
        _pyplot().close(fig)
    logger.debug("wrote %s", path)
    return path


def iou_bars_figure(metrics: Metrics, title: str = "") -> Any:
    """The figure of `plot_iou_bars`, in percent as every score is shown (axis 0 to 100, bar
    labels, mIoU line and its label); the caller closes it."""
    plt = _pyplot()
    groups = metrics.nomenclature.groups
    ious = [c.iou for c in metrics.classes]
    fig, ax = plt.subplots(figsize=IOU_FIGSIZE_IN, dpi=DPI)
    try:
        x = np.arange(len(groups))
        # in percent, as every score is shown: the axis, the bar labels and the mIoU line agree
        heights = [0.0 if math.isnan(v) else 100 * v for v in ious]
        ax.bar(x, heights, color=[g.colour for g in groups], edgecolor="#333333", linewidth=0.6)
        for xi, value, group, height in zip(x, ious, groups, heights, strict=True):
            label = "n/a" if math.isnan(value) else f"{100 * value:.1f}"
            if not group.in_mean:
                label += "*"
            ax.text(xi, height + 1, label, ha="center", va="bottom", fontsize=7)
        if not math.isnan(metrics.miou):
            miou = 100 * metrics.miou
            ax.axhline(miou, color="#444444", linestyle="--", linewidth=1)
            # named above the axes, right of the title: never clipped, never over a bar or
            # its label, wherever the line falls (0 to 100 %)
            ax.set_title(f"mIoU {miou:.2f} % (dashed line)", loc="right", fontsize=8)
        ax.set_xticks(x, [g.name for g in groups], rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0, 110)
        ax.set_yticks(range(0, 101, 20))
        ax.set_ylabel("IoU (%)")
        ax.set_title(title or f"Per-class IoU ({metrics.nomenclature.name}; * = not in mIoU)")
        fig.subplots_adjust(left=0.07, bottom=0.3, right=0.98, top=0.92)
    except BaseException:
        plt.close(fig)
        raise
    return fig
