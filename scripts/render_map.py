"""Render a FLAIR land-cover map to PNG with QGIS's own renderer and its FLAIR style.

Runs in QGIS's Python (Debian's /usr/bin/python3), offscreen. The map opens with the `.qml` the
engine wrote beside it, exactly as it would in QGIS; when an orthophoto is given, it is drawn
beside the map.

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 scripts/render_map.py MAP.tif OUT.png \
        [--ortho ORTHO.tif]
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsMultiBandColorRenderer,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor, QImage, QPainter

MAX_PX = 640


def render(layer: QgsRasterLayer, width: int, height: int, extent) -> QImage:
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(width, height))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    return job.renderedImage()


def draw(map_path: Path, png: Path, ortho_path: Path | None) -> int:
    """Render and save; layers live only inside this call (freed before QGIS exits)."""
    layer = QgsRasterLayer(str(map_path), "FLAIR land cover")
    if not layer.isValid():
        print(f"render_map: cannot open {map_path}", file=sys.stderr)
        return 1
    if layer.renderer().type() != "paletted":
        print(f"render_map: {map_path} has no FLAIR style (.qml) beside it", file=sys.stderr)
        return 1
    scale = min(1.0, MAX_PX / max(layer.width(), layer.height()))
    w, h = max(1, int(layer.width() * scale)), max(1, int(layer.height() * scale))
    images = []
    if ortho_path:
        ortho = QgsRasterLayer(str(ortho_path), "orthophoto")
        ortho.setRenderer(QgsMultiBandColorRenderer(ortho.dataProvider(), 1, 2, 3))
        images.append(render(ortho, w, h, layer.extent()))
    images.append(render(layer, w, h, layer.extent()))
    canvas = QImage(w * len(images) + 10 * (len(images) - 1), h, QImage.Format.Format_ARGB32)
    canvas.fill(QColor(255, 255, 255))
    painter = QPainter(canvas)
    for i, image in enumerate(images):
        painter.drawImage(i * (w + 10), 0, image)
    painter.end()
    if not canvas.save(str(png), "PNG"):
        print(f"render_map: cannot write {png}", file=sys.stderr)
        return 1
    print(png)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("map", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--ortho", type=Path)
    args = parser.parse_args()
    app = QgsApplication([], False)
    app.initQgis()
    code = draw(args.map, args.png, args.ortho)
    gc.collect()
    app.exitQgis()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
