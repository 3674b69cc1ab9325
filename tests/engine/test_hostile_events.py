"""Errors as the plugin reads them: a hostile input and every syntax error end with one JSON
`error` event under `--progress json`, and with text only without it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.cli import main
from tests.fixtures.hostile import last_line, make_scene, run


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scene(tmp_path_factory.mktemp("hostile"))


def test_json_error_event_for_a_hostile_input(
    capsys: pytest.CaptureFixture, tmp_path: Path, scene: Path, unet3: Path
) -> None:
    code, out, _ = run(
        capsys,
        [scene / "truncated.tif", tmp_path / "m.tif", "--model", unet3, "--progress", "json"],
    )
    event = json.loads(last_line(out))
    assert code == 1 and event["event"] == "error" and event["type"] == "InvalidInput"
    assert "is truncated or corrupt" in event["message"]


SYNTAX_ERRORS = [
    (["predict", "--progress", "json"], r"the following arguments are required: input, output"),
    (["predict", "a.tif", "b.tif", "--tile-size", "big", "--progress=json"], r"invalid int value"),
    (["predict", "a.tif", "b.tif", "--progress", "json", "--no-such"], r"unrecognized arguments"),
    (["predict", "a.tif", "b.tif", "--prog", "json", "--extent"], r"expected one argument"),
    (["predikt", "--progress", "json"], r"invalid choice: 'predikt'"),
]


@pytest.mark.parametrize("argv,pattern", SYNTAX_ERRORS)
def test_syntax_errors_are_json_error_events_too(
    capsys: pytest.CaptureFixture, argv: list[str], pattern: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    captured = capsys.readouterr()
    assert stopped.value.code == 2
    event = json.loads(last_line(captured.out))
    assert event["event"] == "error" and event["type"] == "UsageError"
    assert re.search(pattern, event["message"]) and re.search(pattern, captured.err)


def test_syntax_error_without_json_prints_text_only(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["predict", "a.tif", "b.tif", "--tile-size", "big"])
    captured = capsys.readouterr()
    assert stopped.value.code == 2 and captured.out == ""
    assert "invalid int value: 'big'" in last_line(captured.err)
