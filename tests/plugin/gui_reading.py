"""Reading a Processing algorithm dialog as its user does, for the desktop session tests:
its log as saved through its own 'Save log', the errors it shows in red, and a wait that keeps
Qt's events flowing. Imported by gui_session.py once its QGIS application exists.
"""

from __future__ import annotations

import time
from pathlib import Path

from qgis.core import QgsApplication
from qgis.gui import QgsProcessingAlgorithmDialogBase
from qgis.PyQt.QtWidgets import QTextEdit

from flair_qgis.compat import scoped_or_alias

LOG_PLAIN_TEXT = scoped_or_alias(
    (QgsProcessingAlgorithmDialogBase, "LogFormat.FormatPlainText"),
    (QgsProcessingAlgorithmDialogBase, "FormatPlainText"),
)


def wait_until(condition, timeout_s: float) -> bool:
    """Process Qt events until `condition()` holds or the time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        QgsApplication.processEvents()
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def log_text(dialog, folder: Path, name: str) -> str:
    """The dialog's log as the user sees it (saved through the dialog's own 'Save log')."""
    path = folder / f"{name}.txt"
    dialog.saveLogToFile(str(path), LOG_PLAIN_TEXT)
    return path.read_text(encoding="utf-8")


def shown_errors(dialog) -> list[str]:
    """The errors the dialog's log shows, as the user reads them: its red text (QGIS's
    `reportError`), one entry per log paragraph, its line breaks kept."""
    log = dialog.findChild(QTextEdit, "txtLog")
    if log is None:  # not the dialog this session knows: the test says no error was shown
        return []
    document = log.document()
    errors = []
    block = document.begin()
    while block.isValid():
        red = []
        fragments = block.begin()
        while not fragments.atEnd():
            fragment = fragments.fragment()
            brush = fragment.charFormat().foreground()
            if fragment.isValid() and brush.color().name() == "#ff0000":
                red.append(fragment.text())
            fragments += 1
        text = "".join(red).replace("\u2028", "\n").strip()
        if text:
            errors.append(text)
        block = block.next()
    return errors
