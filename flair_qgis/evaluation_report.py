"""An HTML page of an evaluation report folder, for QGIS's Results Viewer.

The engine writes the report as files (metrics.json, per_class.csv, confusion_matrix.csv, PNG
plots); this page puts the headline figures, the per-class table and the plots (embedded, so
the page can be moved) in one place. Stdlib only: it runs in QGIS's Python.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from pathlib import Path
from typing import Any

REPORT_PAGE = "report.html"  # the page's name in the report folder, always written there
PLOTS: tuple[tuple[str, str], ...] = (
    ("iou_per_class.png", "IoU per class"),
    ("confusion_matrix.png", "Confusion matrix"),
)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("class", "Class"),
    ("codes", "Codes"),
    ("support_px", "Reference px"),
    ("predicted_px", "Predicted px"),
    ("iou", "IoU"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("f1", "F1"),
)
PERCENT_COLUMNS = {"iou", "precision", "recall", "f1"}


def _percent(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(number) else f"{100 * number:.2f} %"


def _rows(per_class: Path, nomenclature: str) -> list[dict[str, str]]:
    if not per_class.is_file():
        return []
    with per_class.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r for r in rows if not nomenclature or r.get("nomenclature") == nomenclature]


def _image(path: Path, title: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f"<h3>{html.escape(title)}</h3>"
        f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
    )


def report_html(
    report_dir: Path, title: str = "FLAIR land-cover evaluation", saved: Path | None = None
) -> str:
    """The page: headline figures, per-class metrics (primary nomenclature), plots."""
    metrics_path = report_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    nomenclature = str(metrics.get("primary_nomenclature") or metrics.get("nomenclature") or "")
    headline = "".join(
        f"<tr><th>{label}</th><td>{value}</td></tr>"
        for label, value in (
            ("mIoU", _percent(metrics.get("miou"))),
            ("Overall accuracy", _percent(metrics.get("overall_accuracy"))),
            ("Mean F1", _percent(metrics.get("mean_f1"))),
            ("Pixels compared", f"{int(metrics.get('pixels') or 0):,}"),
            ("Nomenclature", html.escape(nomenclature or "?")),
        )
    )
    header = "".join(f"<th>{label}</th>" for _, label in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{_percent(row.get(key)) if key in PERCENT_COLUMNS else html.escape(str(row.get(key, '')))}</td>"  # noqa: E501
            for key, _ in COLUMNS
        )
        + "</tr>"
        for row in _rows(report_dir / "per_class.csv", nomenclature)
    )
    plots = "".join(
        _image(report_dir / name, text) for name, text in PLOTS if (report_dir / name).is_file()
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif} table{border-collapse:collapse;margin:0.5em 0}"
        "td,th{border:1px solid #999;padding:2px 6px;text-align:right}"
        "th{background:#eee} img{max-width:100%}</style></head><body>"
        f"<h2>{html.escape(title)}</h2><table>{headline}</table>"
        f"<h3>Per class</h3><table><tr>{header}</tr>{body}</table>{plots}"
        f"<p>Report folder: {html.escape(str(report_dir))}</p>{_kept(saved)}</body></html>"
    )


def _kept(saved: Path | None) -> str:
    """The link to the copy in the report folder, from a page that may be temporary."""
    if saved is None:
        return ""
    return (
        f'<p>This page is kept in the report folder: <a href="{html.escape(saved.as_uri())}">'
        f"{html.escape(str(saved))}</a></p>"
    )


def write_report_html(report_dir: Path, target: Path, saved: Path | None = None) -> Path:
    """Write the page to `target` and return it; `saved`: the report folder's copy, linked
    from a page written elsewhere (the dialog's temporary HTML output)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        report_html(report_dir, saved=saved.resolve() if saved else None), encoding="utf-8"
    )
    return target
