"""The plugin object QGIS loads: the Processing provider, and in the desktop a menu, a toolbar
button and, on first use without an engine, a message bar offering to install it."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication

from .provider import FlairProvider

MENU = "&FLAIR land cover"
LANDCOVER_ID = "flair:landcover"
INSTALL_ID = "flair:install_engine"
EVALUATE_ID = "flair:evaluate"
REGION_ID = "flair:landcover_region"


class FlairPlugin:
    """`initProcessing` works headless (qgis_process); `initGui` only adds what a GUI needs."""

    def __init__(self, iface: Any = None) -> None:
        self.iface = iface
        self.provider: FlairProvider | None = None
        self.actions: list[Any] = []
        self.toolbar_action: Any = None
        self.message_bar_item: Any = None

    def initProcessing(self) -> None:  # noqa: N802
        if self.provider is None:
            provider = FlairProvider()
            # The registry refuses (and deletes) a second provider with the same id.
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self) -> None:  # noqa: N802
        """Plugins > FLAIR land cover: every algorithm; a toolbar button for the map."""
        self.initProcessing()
        if self.iface is None:
            return
        from .compat import QAction
        from .icons import plugin_icon

        window = self.iface.mainWindow()
        for algorithm_id, text in (
            (LANDCOVER_ID, "FLAIR land-cover segmentation\u2026"),
            (REGION_ID, "FLAIR land cover for a region\u2026"),
            (EVALUATE_ID, "Evaluate land-cover map\u2026"),
            (INSTALL_ID, "Install or repair the FLAIR engine\u2026"),
        ):
            action = QAction(plugin_icon(), text, window)
            action.setObjectName(algorithm_id.replace(":", "_"))
            action.triggered.connect(lambda _=False, a=algorithm_id: self.open_dialog(a))
            self.iface.addPluginToMenu(MENU, action)
            self.actions.append(action)
        self.toolbar_action = self.actions[0]
        self.iface.addToolBarIcon(self.toolbar_action)

    def open_dialog(self, algorithm_id: str) -> Any:
        """Open an algorithm's dialog; the land-cover one first checks that an engine exists
        and, when none does, shows a message bar whose button opens the installer."""
        import processing

        if algorithm_id in (LANDCOVER_ID, REGION_ID):
            self.offer_install_when_missing()
        dialog = processing.createAlgorithmDialog(algorithm_id)
        if dialog is not None:
            dialog.show()
        return dialog

    def offer_install_when_missing(self) -> bool:
        """True (and a message bar with an install button) when no engine is configured."""
        from .engine_locator import locate_engine

        location = locate_engine()
        if location is not None and location.python.is_file():
            return False
        if self.iface is None:
            return True
        from qgis.PyQt.QtWidgets import QPushButton

        from .compat import MESSAGE_WARNING

        bar = self.iface.messageBar()
        item = bar.createMessage(
            "FLAIR", "The FLAIR engine (torch, the models' runtime) is not installed yet."
        )
        button = QPushButton("Install or repair the FLAIR engine\u2026", item)
        button.setObjectName("flair_install_button")
        button.clicked.connect(lambda _=False: self.open_dialog(INSTALL_ID))
        item.layout().addWidget(button)
        bar.pushWidget(item, MESSAGE_WARNING)
        self.message_bar_item = item
        return True

    def unload(self) -> None:
        if self.iface is not None:
            for action in self.actions:
                self.iface.removePluginMenu(MENU, action)
            if self.toolbar_action is not None:
                self.iface.removeToolBarIcon(self.toolbar_action)
        self.actions, self.toolbar_action = [], None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
