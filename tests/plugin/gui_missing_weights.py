"""The desktop session's offline phase: a registry model whose weights are nowhere, run from
the real `flair:landcover` dialog until its error shows, timed from the click on Run.
Imported by gui_session.py once its QGIS application exists.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

from tests.plugin.gui_reading import log_text, shown_errors, wait_until

NO_WEIGHTS_ENV = ("FLAIR_WEIGHTS_DIR", "HF_HOME", "HF_HUB_OFFLINE")
NO_WEIGHTS_UNSET = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT")


@contextmanager
def no_weights_anywhere(folder: Path):
    """No weights on this machine and the hub off, for the runs inside: the weights folder and
    the Hugging Face home are empty folders, HF_HUB_OFFLINE=1 (the engine inherits this
    environment), and the provider's weights folder setting is emptied; all restored after."""
    from qgis.core import QgsSettings

    from flair_qgis.settings import PROCESSING_PREFIX, SETTING_WEIGHTS_DIR

    (folder / "weights").mkdir(parents=True, exist_ok=True)
    (folder / "hf_home").mkdir(parents=True, exist_ok=True)
    key = f"{PROCESSING_PREFIX}/{SETTING_WEIGHTS_DIR}"
    saved_env = {k: os.environ.get(k) for k in (*NO_WEIGHTS_ENV, *NO_WEIGHTS_UNSET)}
    saved_setting = QgsSettings().value(key, None)
    for k in NO_WEIGHTS_UNSET:
        os.environ.pop(k, None)
    os.environ.update(
        FLAIR_WEIGHTS_DIR=str(folder / "weights"),
        HF_HOME=str(folder / "hf_home"),
        HF_HUB_OFFLINE="1",
    )
    QgsSettings().setValue(key, "")
    try:
        yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if saved_setting is None:
            QgsSettings().remove(key)
        else:
            QgsSettings().setValue(key, saved_setting)


def run_to_error(spec: dict, model: str, name: str) -> dict:
    """Open the dialog on the small raster with a registry model chosen, click Run, and time
    until the dialog's log shows an error; the errors as shown, and the whole log."""
    import processing

    from flair_qgis.models import model_choices

    folder = Path(spec["out_dir"])
    names = [choice.name for choice in model_choices()]
    dialog = processing.createAlgorithmDialog(
        "flair:landcover",
        {
            "INPUT": spec["small"],
            "MODEL": names.index(model),
            "TILE_SIZE": 256,
            "MARGIN": 32,
            "DEVICE": 1,
            "OUTPUT": str(folder / f"{name}.tif"),
        },
    )
    dialog.show()
    wait_until(lambda: False, 0.5)
    clicked = time.monotonic()
    dialog.runAlgorithm()
    shown = wait_until(lambda: bool(shown_errors(dialog)), 180)
    elapsed = time.monotonic() - clicked
    finished = wait_until(lambda: not dialog.cancelButton().isEnabled(), 60)
    wait_until(lambda: False, 0.3)
    errors = shown_errors(dialog)
    text = log_text(dialog, folder, f"log_{name}")
    dialog.close()
    return {
        "shown": shown,
        "finished": finished,
        "elapsed_s": round(elapsed, 2),
        "message": errors[0] if errors else "",
        "errors": errors,
        "log": text,
        "left": sorted(p.name for p in folder.iterdir() if p.name.startswith((name, f".{name}"))),
    }


def missing_weights(spec: dict, model: str) -> dict:
    """A registry model whose weights are nowhere, offline: the error as the dialog shows it and
    how long after Run. Run once as a user's second run of the session (the engine already
    checked), then once more with the plugin's engine check forgotten, as a session's first
    run (`first_run`), for the figure of the one-time check."""
    from flair_qgis import engine_locator

    with no_weights_anywhere(Path(spec["out_dir"]).parent / "no_weights"):
        report = run_to_error(spec, model, "no_weights")
        engine_locator._checked.clear()
        report["first_run"] = run_to_error(spec, model, "no_weights_first")
    report["model"] = model
    return report
