"""QGIS 4's API on QGIS 3.x: remove the unscoped enum aliases before the plugin loads.

QGIS 3.x keeps `QgsProcessing.TypeRaster` beside `Qgis.ProcessingSourceType.Raster` for old
code, and marks each such alias with `is_monkey_patched`; QGIS 4 (Qt 6) has no aliases. Deleting
every marked attribute of every QGIS class makes a QGIS 3.x session behave as QGIS 4 does for
them, so a test run finds any alias the plugin still uses. Enum classes keep their members (those
are the scoped names themselves).

Set FLAIR_QGIS_STRICT_API=1 to turn it on for the plugin suite (conftest.py) and the GUI
session; `make test-qgis-versions` does so on QGIS 3.44.
"""

from __future__ import annotations

import enum
import inspect
import os

STRICT_API_ENV = "FLAIR_QGIS_STRICT_API"


def strict_api_requested() -> bool:
    return os.environ.get(STRICT_API_ENV, "") not in ("", "0")


def remove_unscoped_enum_aliases() -> list[str]:
    """Delete the aliases QGIS marks `is_monkey_patched`; returns `Class.Name` of each one.

    Only a QGIS that marks its aliases (3.30 and later) has any to delete; on 3.22 the list
    is empty, and callers that need strictness must check it is not.
    """
    import qgis.core
    import qgis.gui

    removed: list[str] = []
    classes = {
        id(cls): cls
        for module in (qgis.core, qgis.gui)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if not issubclass(cls, enum.Enum)
    }
    for cls in classes.values():
        for name, value in list(vars(cls).items()):
            if getattr(value, "is_monkey_patched", False) is True:
                delattr(cls, name)
                removed.append(f"{cls.__qualname__}.{name}")
    return removed
