"""The torch work of a CPU run in a child process (engine.runtime.torch_child): the card it
resolves is the loader's, what it says and its errors reach the run as they would from the run
itself, and it ends with the run that started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import MissingChannels, ModelError
from engine.models.loader import load_model, load_resolved
from engine.models.overrides import CardOverrides
from engine.runtime import torch_child
from tests.engine.recording import Said
from tests.fixtures.generate import make_unet_checkpoint

REPO = Path(__file__).resolve().parents[2]


def test_the_child_resolves_the_loaders_card_and_says_what_it_says(tmp_path: Path) -> None:
    ckpt = make_unet_checkpoint(tmp_path / "w.pth", 4, 13, "flair-inc", seed=3)
    overrides = CardOverrides(inactive_codes=(13,))
    here = Said()
    expected = load_resolved(None, ckpt, overrides, lambda m: here.lines.append(m)).card
    said = Said()
    card, notes = torch_child.resolve_card(ckpt, None, overrides, said)
    assert card == expected
    assert list(notes) == said.lines == here.lines
    assert any("no model card for w.pth" in line for line in notes)
    # a card given: checked against the tensors there, as here
    asked = load_model(ckpt).card
    expected = load_resolved(asked, ckpt, overrides).card
    assert torch_child.resolve_card(ckpt, asked, overrides, Said())[0] == expected


def test_an_engine_error_in_the_child_is_raised_here_as_itself(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ModelError) as here:
        load_resolved(None, empty, CardOverrides())
    with pytest.raises(ModelError) as there:
        torch_child.resolve_card(empty, None, CardOverrides(), Said())
    assert str(there.value) == str(here.value) and "is empty" in str(there.value)


def test_an_errors_class_and_fields_survive_the_way_back() -> None:
    reply = {
        "error": {
            "class": "MissingChannels",
            "message": "no NIR band",
            "fields": {"channels": ["NIR"], "option": "--bands"},
        }
    }
    with pytest.raises(MissingChannels) as raised:
        torch_child._raise(reply, 0, "", "reading w.pth")
    assert raised.value.fields == {"channels": ["NIR"], "option": "--bands"}
    other = {"error": {"class": "RuntimeError", "message": "graph refused", "fields": {}}}
    with pytest.raises(
        RuntimeError, match="converting w failed: RuntimeError: graph refused\ncontext"
    ):
        torch_child._raise(other, 0, "context\n", "converting w")


def test_a_child_that_dies_is_named_with_its_signal_and_last_words() -> None:
    words = "\n".join(f"line {i}" for i in range(40))
    with pytest.raises(RuntimeError) as raised:
        torch_child._raise(None, -signal.SIGKILL, words, "converting w")
    message = str(raised.value)
    assert "killed by SIGKILL (out of memory?)" in message
    assert message.endswith("line 39") and "line 24" not in message  # its last 15 lines
    with pytest.raises(RuntimeError, match="ended with exit status 3"):
        torch_child._raise(None, 3, "", "converting w")


def test_the_child_ends_with_the_run_that_started_it(tmp_path: Path) -> None:
    """Its stdin closing (the run ended, even killed) ends it, not its work's end."""
    ckpt = make_unet_checkpoint(tmp_path / "w.pth", 4, 13, "flair-inc", seed=3)
    request = {"job": "card", "weights_path": str(ckpt), "asked": None, "overrides": {}}
    child = subprocess.Popen(
        [sys.executable, "-m", "engine.runtime.torch_child"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(request) + "\n")
    child.stdin.close()
    assert child.wait(timeout=60) == 3
    assert not any('"result"' in line for line in child.stdout)


def test_the_same_work_runs_in_this_process_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = make_unet_checkpoint(tmp_path / "w.pth", 4, 13, "flair-inc", seed=3)
    monkeypatch.setattr(torch_child, "SEPARATE_PROCESS", False)
    monkeypatch.setattr(subprocess, "Popen", None)  # no child may start
    card, notes = torch_child.resolve_card(ckpt, None, CardOverrides(), Said())
    assert card == load_model(ckpt).card and notes
