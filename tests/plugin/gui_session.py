"""A QGIS desktop session on an X display (Xvfb in the tests): the plugin's menu, the first-use
message bar, and the real `flair:landcover` algorithm dialog run, cancelled, run without
weights (offline) until its error shows, and run to the end.

Run by test_gui_dialog.py as its own process (a QGIS application is either GUI or not for the
life of a process, and the rest of the suite runs without GUI):

    xvfb-run -a /usr/bin/python3 tests/plugin/gui_session.py SPEC.json

SPEC.json names the inputs (a large raster to cancel on, a small one to map, a checkpoint), the
output folder and where to save the screenshots. The last line printed is a JSON report.

QGIS's main window (QgisApp) is C++ that Python cannot create; `Desktop` stands in for the
`iface` it would give the plugin: a real main window, map canvas, message bar and layer tree.
Everything else is QGIS's own code: Processing, the algorithm dialog, its background task,
result loading and styling.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from qgis.core import QgsApplication

REPO = Path(__file__).resolve().parents[2]
APP = QgsApplication([], True)
APP.initQgis()
sys.path[:0] = [str(REPO), "/usr/share/qgis/python/plugins"]

from tests.plugin.strict_api import remove_unscoped_enum_aliases, strict_api_requested  # noqa: E402

STRICT_API_REMOVED = remove_unscoped_enum_aliases() if strict_api_requested() else []

from qgis.core import QgsLayerTreeModel, QgsProject  # noqa: E402
from qgis.gui import (  # noqa: E402
    QgsLayerTreeMapCanvasBridge,
    QgsLayerTreeView,
    QgsMapCanvas,
    QgsMessageBar,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtWidgets import (  # noqa: E402
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from flair_qgis.compat import scoped_or_alias  # noqa: E402
from tests.plugin.gui_missing_weights import missing_weights  # noqa: E402
from tests.plugin.gui_reading import log_text, wait_until  # noqa: E402

ALLOW_VISIBILITY = scoped_or_alias(
    (QgsLayerTreeModel, "Flag.AllowNodeChangeVisibility"),
    (QgsLayerTreeModel, "AllowNodeChangeVisibility"),
)


class Desktop:
    """The part of QgisInterface the plugin and Processing's dialogs use, on real widgets.

    Newer Processing (3.40 and later) also adds results through `layerTreeView()` and makes the
    last one current with `setActiveLayer`: a real layer tree view over the project answers."""

    def __init__(self) -> None:
        self.window = QMainWindow()
        central = QWidget()
        layout = QVBoxLayout(central)
        self.bar = QgsMessageBar()
        self.canvas = QgsMapCanvas()
        layout.addWidget(self.bar)
        layout.addWidget(self.canvas)
        self.window.setCentralWidget(central)
        self.menu: dict[str, list] = {}
        self.toolbar: list = []
        self.view = QgsLayerTreeView()
        self.model = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot())
        self.model.setFlag(ALLOW_VISIBILITY)
        self.view.setModel(self.model)

    def mainWindow(self):  # noqa: N802
        return self.window

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def messageBar(self):  # noqa: N802
        return self.bar

    def activeLayer(self):  # noqa: N802
        return self.view.currentLayer()

    def setActiveLayer(self, layer) -> bool:  # noqa: N802
        self.view.setCurrentLayer(layer)
        return True

    def layerTreeView(self):  # noqa: N802
        return self.view

    # Processing's menus module reads these when imported (the options page imports it)
    def vectorMenu(self):  # noqa: N802
        return self.window.menuBar().addMenu("&Vector")

    def rasterMenu(self):  # noqa: N802
        return self.window.menuBar().addMenu("&Raster")

    def selectionToolBar(self):  # noqa: N802
        return self.window.addToolBar("Selection")

    def browserModel(self):  # noqa: N802
        return None

    def addPluginToMenu(self, name, action):  # noqa: N802
        self.menu.setdefault(name, []).append(action)

    def removePluginMenu(self, name, action):  # noqa: N802
        self.menu.get(name, []).remove(action)

    def addToolBarIcon(self, action):  # noqa: N802
        self.toolbar.append(action)

    def removeToolBarIcon(self, action):  # noqa: N802
        self.toolbar.remove(action)


def first_use(plugin, desktop: Desktop) -> dict:
    """No engine: opening the algorithm shows a message bar whose button opens the installer."""
    saved = os.environ.get("FLAIR_ENGINE_PYTHON")
    os.environ["FLAIR_ENGINE_PYTHON"] = "/nonexistent/flair/python"
    try:
        dialog = plugin.open_dialog("flair:landcover")
    finally:
        if saved is None:
            os.environ.pop("FLAIR_ENGINE_PYTHON")
        else:
            os.environ["FLAIR_ENGINE_PYTHON"] = saved
    item = desktop.bar.currentItem()
    button = item.findChild(QPushButton, "flair_install_button") if item else None
    opened = []
    original = plugin.open_dialog
    plugin.open_dialog = lambda algorithm_id: opened.append(original(algorithm_id)) or opened[-1]
    if button is not None:
        button.click()
    plugin.open_dialog = original
    installer = opened[0].algorithm().id() if opened and opened[0] is not None else ""
    for shown in (dialog, *opened):
        if shown is not None:
            shown.close()
    desktop.bar.clearWidgets()
    return {"message_bar": item.text() if item else "", "installer_opened": installer}


def options_page() -> dict:
    """Processing's options page (Settings > Options > Processing), as QGIS builds it: the
    FLAIR settings under Providers."""
    from processing.gui.ConfigDialog import ConfigDialog

    page = ConfigDialog()
    root = page.model.invisibleRootItem()
    providers = next(
        root.child(i) for i in range(root.rowCount()) if root.child(i).text() == "Providers"
    )
    groups = {providers.child(i).text(): providers.child(i) for i in range(providers.rowCount())}
    flair = groups.get("FLAIR")
    rows = [flair.child(i).text() for i in range(flair.rowCount())] if flair else []
    page.deleteLater()
    return {"groups": sorted(groups), "flair": rows}


def landcover_dialog(spec: dict, raster: str, name: str):
    """The algorithm dialog as a user fills it: the orthophoto, a checkpoint file, small tiles
    on the CPU, the map and its confidence in the output folder."""
    import processing

    folder = Path(spec["out_dir"])
    return processing.createAlgorithmDialog(
        "flair:landcover",
        {
            "INPUT": raster,
            "MODEL_FILE": spec["checkpoint"],
            "TILE_SIZE": 256,
            "MARGIN": 32,
            "DEVICE": 1,
            "OUTPUT": str(folder / f"{name}.tif"),
            "CONFIDENCE": str(folder / f"{name}_confidence.tif"),
        },
    )


def cancel_run(spec: dict, images: Path | None) -> dict:
    """Open the dialog on a large raster, run, cancel while the engine maps, read the log."""
    dialog = landcover_dialog(spec, spec["big"], "cancelled")
    dialog.show()
    dialog.resize(QSize(1000, 1000))  # after show(): the dialog restores its last geometry
    wait_until(lambda: False, 0.5)
    if images is not None:
        dialog.grab().save(str(images / "plugin_dialog.png"))
    dialog.runAlgorithm()
    started = wait_until(lambda: "Inference:" in log_text(dialog, Path(spec["out_dir"]), "a"), 180)
    progress = dialog.findChild(QProgressBar).value()
    clicked = time.monotonic()
    dialog.cancelButton().click()
    finished = wait_until(lambda: not dialog.cancelButton().isEnabled(), 60)
    cancel_s = time.monotonic() - clicked
    wait_until(lambda: False, 0.5)
    text = log_text(dialog, Path(spec["out_dir"]), "cancel_log")
    dialog.close()
    left = sorted(
        p.name
        for p in Path(spec["out_dir"]).iterdir()
        if p.name.startswith(("cancelled", ".cancelled"))
    )
    return {
        "started": started,
        "finished": finished,
        "progress_at_cancel": progress,
        "cancel_s": round(cancel_s, 2),
        "log": text,
        "left": left,
    }


def mapped_run(spec: dict, desktop: Desktop, images: Path | None) -> dict:
    """Run to the end on a small raster: the result loads named and styled, with its legend."""
    output = Path(spec["out_dir"]) / "landcover.tif"
    dialog = landcover_dialog(spec, spec["small"], "landcover")
    dialog.show()
    dialog.runAlgorithm()
    done = wait_until(lambda: len(QgsProject.instance().mapLayers()) >= 2, 300)
    text = log_text(dialog, Path(spec["out_dir"]), "run_log") if done else ""
    dialog.close()
    layers = {layer.name(): layer for layer in QgsProject.instance().mapLayers().values()}
    result = next((lyr for lyr in layers.values() if Path(lyr.source()) == output), None)
    report = {
        "done": done,
        "log": text,
        "layers": sorted(layers),
        "renderer": result.renderer().type() if result else "",
        "legend": [c.label for c in result.renderer().classes()] if result else [],
    }
    confidence = next(
        (lyr for lyr in layers.values() if lyr.name().endswith(" - confidence")), None
    )
    if confidence is not None:
        shader = confidence.renderer().shader().rasterShaderFunction()
        report["confidence_legend"] = [item.label for item in shader.colorRampItemList()]
        QgsProject.instance().layerTreeRoot().findLayer(confidence.id()).setItemVisibilityChecked(
            False
        )
    if images is not None and result is not None:
        report["screenshot"] = legend_screenshot(desktop, result, images)
    return report


def legend_screenshot(desktop: Desktop, layer, images: Path) -> str:
    """The map canvas beside the layer tree with the FLAIR legend, grabbed as one picture."""
    root = QgsProject.instance().layerTreeRoot()
    view = desktop.view
    bridge = QgsLayerTreeMapCanvasBridge(root, desktop.canvas)
    splitter = QSplitter()
    splitter.addWidget(view)
    splitter.addWidget(desktop.canvas)
    splitter.resize(QSize(1000, 640))
    splitter.setSizes([330, 670])
    splitter.show()
    view.expandAll()
    desktop.canvas.setDestinationCrs(layer.crs())
    desktop.canvas.setExtent(layer.extent())
    desktop.canvas.refresh()
    wait_until(lambda: False, 1.0)
    desktop.canvas.waitWhileRendering()
    wait_until(lambda: False, 0.5)
    path = images / "plugin_result_legend.png"
    splitter.grab().save(str(path))
    splitter.hide()
    del bridge
    return str(path)


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    missing = [spec[k] for k in ("big", "small", "checkpoint") if not Path(spec[k]).is_file()]
    if missing:  # the dialog would refuse to run and the waits below would only time out
        raise SystemExit(f"gui_session: missing inputs {missing}")
    images = Path(spec["images"]) if spec.get("images") else None
    desktop = Desktop()
    import qgis.utils

    qgis.utils.iface = desktop  # before Processing's GUI modules import it
    from processing.core.Processing import Processing

    Processing.initialize()
    import flair_qgis

    plugin = flair_qgis.classFactory(desktop)
    plugin.initGui()
    report = {
        "strict_api_removed": len(STRICT_API_REMOVED),
        "menu": {name: [a.text() for a in actions] for name, actions in desktop.menu.items()},
        "toolbar": [a.text() for a in desktop.toolbar],
    }
    report["first_use"] = first_use(plugin, desktop)
    report["options"] = options_page()
    report["cancel"] = cancel_run(spec, images)
    # after a first run (the session's one engine check is done), before the run whose legend
    # screenshot takes the map canvas away
    report["missing_weights"] = missing_weights(spec, "flair-inc-rgbie-15cl")
    report["run"] = mapped_run(spec, desktop, images)
    plugin.unload()
    print(json.dumps(report))
    sys.stdout.flush()
    os._exit(0)  # QGIS's exit in a script segfaults now and then on Debian 12; nothing is left


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
