"""One home for each default (STYLE.md): every option default of every command, the studio's
compose form and the API's signatures are the values of their one home: tempo in
synth.music.songs.DEFAULT_BPM, effects in Effects, sampling in Sampling, how the piano plays
in Performance, composing in api.ComposeRequest, training in TrainSettings, live in
LiveSettings. A default changed in its home changes everywhere; one written out anew fails."""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings
from pathlib import Path

import pytest
import typer

from synth import api
from synth.cli import app
from synth.learn.generate import Sampling
from synth.learn.train import TrainSettings
from synth.music.songs import DEFAULT_BPM
from synth.play.live import LiveSettings
from synth.sound.effects import Effects
from synth.sound.piano import Performance

STATIC = Path(api.__file__).parent / "studio" / "static"
EFFECTS = {"room_size": Effects.room_size, "wet": Effects.wet, "cutoff": Effects.cutoff,
           "loudness": Effects.loudness, "no_fx": not Effects.enabled}
SAMPLING = {"temperature": Sampling.temperature, "top_p": Sampling.top_p,
            "seed": Sampling.seed, "memory": Sampling.memory}
# The train command's options are written out in the CLI (importing synth.learn.train there
# would load it for every command); this holds them to TrainSettings. --lr-half-life 0 is
# TrainSettings' None: a constant rate.
TRAIN = {f.name: f.default for f in dataclasses.fields(TrainSettings)} | {"lr_half_life": 0.0}
LIVE = {f.name: f.default for f in dataclasses.fields(LiveSettings) if f.name != "sampling"}

# command -> option -> the default it must have, read from the option's home
HOMES = {
    "compose": {"notes": api.ComposeRequest.notes, "even": api.ComposeRequest.even,
                "bpm": None, "humanize": Performance.humanize, **SAMPLING, **EFFECTS},
    "render": {"bpm": None, "humanize": Performance.humanize, "seed": Performance.seed,
               **EFFECTS},
    "record": {"bpm": DEFAULT_BPM},
    "live": {**SAMPLING, **EFFECTS, **LIVE},
    "train": {name: TRAIN[name] for name in ("epochs", "batch_size", "learning_rate",
                                             "lr_half_life", "chunk", "val_fraction", "seed",
                                             "strategy", "cpu_devices", "max_minutes",
                                             "memory")},
}


def options() -> dict[str, dict[str, object]]:
    """command -> option name -> its default, as typer hands them to click."""
    group = typer.main.get_command(app)
    return {name: {p.name: p.default for p in command.params}
            for name, command in group.commands.items()}


@pytest.mark.parametrize("command", sorted(HOMES))
def test_every_option_default_is_its_homes(command):
    given = options()[command]
    assert set(HOMES[command]) <= set(given), "an option of the table is gone: update HOMES"
    assert {name: given[name] for name in HOMES[command]} == HOMES[command]


def test_a_tempo_left_open_is_said_to_be_the_default_tempo():
    group = typer.main.get_command(app)
    for command in ("compose", "render"):
        bpm = next(p for p in group.commands[command].params if p.name == "bpm")
        assert f"{DEFAULT_BPM:g}]" in bpm.help


def test_the_api_signatures_read_the_same_homes():
    compose = inspect.signature(api.compose).parameters
    assert compose["notes"].default == api.ComposeRequest.notes
    for name in ("temperature", "top_p", "seed", "memory"):
        assert compose[name].default == SAMPLING[name]
    assert inspect.signature(api.performance).parameters["bpm"].default == DEFAULT_BPM
    assert Performance().bpm == DEFAULT_BPM


def test_the_studio_serves_its_compose_defaults_from_the_homes(tmp_path):
    from synth.studio.app import create_app

    with warnings.catch_warnings():  # newer Starlette asks for httpx2; httpx still works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    with TestClient(create_app(tmp_path)) as client:
        served = client.get("/api/compose").json()
    assert served == {"notes": api.ComposeRequest.notes, "bpm": DEFAULT_BPM, "seed": None,
                      "temperature": Sampling.temperature, "top_p": Sampling.top_p,
                      "room_size": Effects.room_size, "wet": Effects.wet,
                      "cutoff": Effects.cutoff, "effects": Effects.enabled,
                      "even": api.ComposeRequest.even, "primer": "", "style": "default"}


def test_the_compose_page_writes_out_no_default_of_its_own():
    page = (STATIC / "index.html").read_text()
    form = re.search(r'<form[^>]*id="compose-form".*?</form>', page, re.S).group(0)
    for name in ("notes", "bpm", "temperature", "top_p", "room_size", "wet", "cutoff"):
        field = re.search(rf'<input name="{name}"[^>]*>', form).group(0)
        assert "value=" not in field, field
    assert "checked" not in form  # effects on, even off: from the server too
    for script in ("app.js", "player.js"):
        assert not re.search(r"\b150\b", (STATIC / script).read_text()), script
