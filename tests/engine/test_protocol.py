"""The JSON-lines protocol (engine/protocol.py): every event a run prints is one the module
describes; errors carry a code and fields; the handshake comes first; `cleanup` sweeps what a
killed run left."""

from __future__ import annotations

import fcntl
import io
import json
import os
from pathlib import Path

import pytest
from rasterio.enums import ColorInterp

from engine import __version__, protocol
from engine.cli import main
from engine.errors import MissingChannels
from engine.io.bands import parse_bands, resolve_bands
from engine.progress import JsonLinesReporter, TerminalReporter
from tests.fixtures.generate import make_orthophoto


def run_json(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, list[dict]]:
    code = main([*(str(a) for a in args), "--progress", "json"])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_every_event_of_a_run_validates_and_done_says_what_ran(
    capsys: pytest.CaptureFixture, tmp_path: Path, ortho5: Path, unet5: Path
) -> None:
    """A partial band map (NIR and E swapped) is completed by the engine's rule, and the run
    record says which band of which file fed each channel."""
    code, events = run_json(
        capsys,
        "predict",
        ortho5,
        tmp_path / "m.tif",
        "--model",
        unet5,
        "--bands",
        "NIR=5,E=4",
        "--tile-size",
        "256",
        "--margin",
        "32",
        "--batch-size",
        "2",
        "--device",
        "cpu",
    )
    assert code == 0
    assert events[0] == {"event": "hello", "protocol": protocol.VERSION, "engine": __version__}
    for event in events:
        protocol.validate(event)
    done = events[-1]
    assert done["event"] == "done" and done["outputs"]["output"] == str(tmp_path / "m.tif")
    run = done["run"]
    assert run["model"]["architecture"] == "unet" and run["model"]["title"] == "a U-Net"
    assert run["model"]["uses_sentinel2"] is False
    assert [(c["channel"], c["band"]) for c in run["channels"]] == [
        ("R", 1),
        ("G", 2),
        ("B", 3),
        ("NIR", 5),
        ("E", 4),
    ]
    assert {c["path"] for c in run["channels"]} == {str(ortho5)}
    assert run["runtime"]["name"] == "torch" and run["runtime"]["device"] == "cpu"
    assert run["runtime"]["precision"] == "fp32" and "CPU requested" in run["runtime"]["why"]
    assert run["tiling"] == {"tile_size_px": 256, "margin_px": 32, "batch": 2}


def test_error_events_carry_code_and_fields(
    capsys: pytest.CaptureFixture, tmp_path: Path, ortho5: Path, unet5: Path
) -> None:
    rgb = make_orthophoto(tmp_path / "rgb.tif", 64, 64, 3)
    out = tmp_path / "out.tif"
    cases = [
        (
            (rgb, out, "--model", unet5),
            "missing_channels",
            {"channels": ["NIR", "E"], "option": "--bands", "needs": ["R", "G", "B", "NIR", "E"]},
        ),
        (
            (ortho5, out, "--model", unet5, "--tile-size", "500"),
            "invalid_input",
            {"option": "--tile-size", "value": 500},
        ),
        (
            (ortho5, out, "--model", unet5, "--bands", "1,2,9"),
            "invalid_input",
            {"option": "--bands", "channel": "B", "band": 9, "band_count": 5},
        ),
        (
            (tmp_path / "missing.tif", out, "--model", unet5),
            "input_not_found",
            {"path": str(tmp_path / "missing.tif")},
        ),
    ]
    for args, code, fields in cases:
        status, events = run_json(capsys, "predict", *args)
        assert status == 1, args
        assert events[0]["event"] == "hello"
        error = protocol.validate(events[-1])
        assert error["event"] == "error" and error["code"] == code, error
        assert fields.items() <= error["fields"].items(), error


def test_a_usage_error_says_hello_first(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["predict", "--no-such-option", "--progress", "json"])
    assert stop.value.code == 2
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["hello", "error"]
    assert protocol.validate(events[1])["code"] == "usage"


def test_missing_channels_are_named_in_the_fields() -> None:
    gray = (ColorInterp.gray,) * 3
    with pytest.raises(MissingChannels) as err:
        resolve_bands(("R", "G", "B", "NIR"), 3, gray, None, None, "m")
    assert err.value.code == "missing_channels"
    assert err.value.fields["channels"] == ["NIR"] and err.value.fields["model"] == "m"


@pytest.mark.parametrize(
    ("spec", "interps", "descriptions", "expected"),
    [
        # no colour interpretation: the bands the user did not set follow in R, G, B, NIR order
        ("NIR=1", (ColorInterp.gray,) * 4, (), {"NIR": 1, "R": 2, "G": 3, "B": 4}),
        # colour interpretation completes red, green and blue; NIR is the user's
        (
            "NIR=1",
            (ColorInterp.gray, ColorInterp.red, ColorInterp.green, ColorInterp.blue),
            (),
            {"NIR": 1, "R": 2, "G": 3, "B": 4},
        ),
        # band descriptions win over the display colours (an IRC file); R set by the user
        (
            "R=3",
            (ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.gray),
            ("nir", "rouge", "vert", None),
            {"R": 3, "NIR": 1, "G": 2, "B": 4},
        ),
    ],
)
def test_a_partial_band_map_is_completed_by_the_engines_rule(
    spec: str, interps: tuple, descriptions: tuple, expected: dict[str, int]
) -> None:
    channels = ("R", "G", "B", "NIR")
    mapping = resolve_bands(
        channels, len(interps), interps, parse_bands(spec), None, "m", descriptions
    )
    assert {s.channel: s.band for s in mapping.sources} == expected


def test_events_are_checked_against_the_module() -> None:
    assert protocol.validate(protocol.log("x", "warning", option="--year"))["level"] == "WARNING"
    bad = [
        {"event": "nope"},
        {"event": "progress", "phase": "x", "done": 1, "total": 2},  # no fraction
        {"event": "done", "outputs": {}, "stats": {}, "extra": 1},
        {"event": "hello", "protocol": True, "engine": "1"},  # a bool is no version
        {"event": "done", "outputs": {}, "stats": {}, "run": {"model": {}}},
        {"event": "log", "level": "LOUD", "message": "x"},
        ["event", "log"],
    ]
    for event in bad:
        with pytest.raises(protocol.ProtocolError):
            protocol.validate(event)
    assert protocol.compatible(protocol.VERSION)
    assert not protocol.compatible(None) and not protocol.compatible(protocol.VERSION + 1)
    assert not protocol.compatible(protocol.OLDEST_READ - 1)


def test_log_fields_reach_json_and_the_terminal_names_the_option() -> None:
    stream = io.StringIO()
    reporter = JsonLinesReporter(stream)
    reporter.log("the year differs", "WARNING", option="--year")
    event = protocol.validate(json.loads(stream.getvalue()))
    assert event["fields"] == {"option": "--year"} and event["message"] == "the year differs"
    terminal = io.StringIO()
    TerminalReporter(terminal).log("the year differs", "WARNING", option="--year")
    assert terminal.getvalue() == "warning: the year differs [--year]\n"


def test_cleanup_sweeps_a_killed_runs_working_files_only(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    names = (".out.tif.partial-12", ".out.qml.partial-12", ".out.tif.lock", "out.tif")
    for name in names + (".outside.tif.lock", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / ".out.tif.partial-12.aux.xml").write_text("x")
    # a live run writing another destination keeps its files
    live = tmp_path / ".busy.tif.lock"
    fd = os.open(live, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    (tmp_path / ".busy.tif.partial-99").write_text("x")
    try:
        code, events = run_json(capsys, "cleanup", tmp_path / "out.tif", tmp_path / "busy.tif")
    finally:
        os.close(fd)
    assert code == 0
    for event in events:
        protocol.validate(event)
    remaining = sorted(Path(p).name for p in events[-1]["stats"]["remaining"])
    assert remaining == [".busy.tif.lock", ".busy.tif.partial-99"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".busy.tif.lock", ".busy.tif.partial-99", ".outside.tif.lock", "notes.txt", "out.tif"]
    )
