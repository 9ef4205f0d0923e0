"""The Python API (synth/api.py): each function, its errors, its import cost, the README's
example, and the command line going through it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import synth
from synth import api
from synth.learn.generate import Sampling
from synth.music.events import Event, even as evenly
from synth.music.songs import Song

from conftest import make_midi

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=120)


# --- import cost ------------------------------------------------------------------------------


def test_import_synth_is_cheap_and_never_imports_heavy_modules(tmp_path):
    done = run_python("import sys, synth; synth.SynthError; print(' '.join(sys.modules))",
                      tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    for heavy in ("tensorflow", "keras", "matplotlib", "numpy", "pedalboard", "mido",
                  "soundfile", "synth.api"):
        assert heavy not in loaded


def test_the_api_path_never_imports_tensorflow_or_matplotlib(tmp_path):
    done = run_python(
        "import sys, synth\n"
        "events = synth.compose(notes=20, seed=1)\n"
        "synth.render(events, 'a.wav'); synth.write_song('a.txt', events)\n"
        "synth.read_song('a.txt')\n"
        "print(' '.join(sys.modules))", tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert not {"tensorflow", "keras", "matplotlib"} & loaded


def test_the_exports_are_the_api_functions():
    assert synth.compose is api.compose and synth.render is api.render
    assert synth.Event is Event and synth.Song is Song
    assert {"load_model", "compose", "render", "read_song", "write_song"} <= set(synth.__all__)
    assert set(synth.__all__) == {"SynthError", "__version__", *synth._LAZY}
    for name in synth.__all__:
        getattr(synth, name)
    assert "compose" in dir(synth)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        synth.nope  # noqa: B018


# --- load_model and compose -------------------------------------------------------------------


def test_compose_uses_the_default_model_and_returns_the_events(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./model here: the packaged default
    events = synth.compose(notes=200, seed=1)
    assert len(events) == 200 and all(isinstance(e, Event) for e in events)
    assert synth.compose(notes=200, seed=1) == events  # same seed, same events
    assert synth.compose(notes=200, seed=2) != events


def test_compose_takes_a_model_object_or_folder_and_a_primer_of_any_kind(tmp_path, tiny_model):
    model = synth.load_model(tiny_model)
    assert model.has_lengths
    by_object = synth.compose(30, model=model, primer="C4:1.5 E4:0.5", seed=4)
    assert synth.compose(30, model=str(tiny_model), primer=[Event(13, 6), Event(17, 2)],
                         seed=4) == by_object
    synth.write_song(tmp_path / "p.txt", [Event(13, 6), Event(17, 2)])
    assert synth.compose(30, model=tiny_model, primer=tmp_path / "p.txt", seed=4) == by_object
    assert len(by_object) == 30  # the primer is not repeated


def test_compose_even_gives_every_event_one_beat(tiny_model):
    assert {e.quarters for e in synth.compose(40, model=tiny_model, seed=1, even=True)} == {4}


def test_compose_song_is_the_primer_then_the_new_events_and_even_only_flattens_them(tiny_model):
    primer = [Event(13, 6), Event(17, 2)]
    ask = dict(notes=30, primer=primer, model=tiny_model)
    song = api.compose_song(api.ComposeRequest(**ask, sampling=Sampling(seed=4)))
    assert song.events[:2] == primer and song.primer_length == 2 and len(song.new) == 30
    assert song.new == synth.compose(30, model=tiny_model, primer=primer, seed=4)
    flat = api.compose_song(api.ComposeRequest(**ask, sampling=Sampling(seed=4), even=True))
    assert flat.events == evenly(song.events)  # the model heard the primer as written


def test_outputs_are_checked_before_any_work(tmp_path):
    (tmp_path / "a.mid").write_bytes(b"")
    with pytest.raises(synth.SynthError, match="a.mid exists already"):
        api.Outputs(audio=tmp_path / "a.wav", midi=tmp_path / "a.mid").check()
    with pytest.raises(synth.SynthError, match="cannot write .mp3"):
        api.Outputs(audio=tmp_path / "a.mp3").check()
    assert api.Outputs(midi=tmp_path / "a.mid").check(overwrite=True).midi == tmp_path / "a.mid"


@pytest.mark.parametrize("kwargs, message", [
    ({"notes": 0}, "--notes 0 is out of range"),
    ({"notes": 200_000}, "--notes 200000 is out of range"),
    ({"temperature": 0}, "--temperature 0 is out of range"),
    ({"top_p": 1.5}, "--top-p 1.5 is out of range"),
    ({"primer": "H9"}, "H9"),
    ({"primer": ""}, "the primer is empty"),
    ({"primer": [(13, 99)]}, "length 99 quarter beats is out of range"),
    ({"primer": "missing.txt"}, "missing.txt: no such file"),
    ({"model": "no-such-model"}, "no-such-model"),
])
def test_compose_bad_input_is_a_synth_error(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(synth.SynthError, match=re.escape(message)):
        synth.compose(**kwargs)


# --- render -----------------------------------------------------------------------------------

SHORT = [Event(13, 4), Event(17, 2), Event(0, 2), Event(20, 8)]


def test_render_to_an_array_is_stereo_float32_under_the_ceiling():
    audio = synth.render(SHORT, bpm=120)
    assert isinstance(audio, np.ndarray) and audio.dtype == np.float32
    assert audio.ndim == 2 and audio.shape[1] == 2
    assert audio.shape[0] >= 44_100 * 16 * 60 / 120 / 4  # 16 quarter beats at 120 bpm
    peak = float(np.abs(audio).max())
    assert 0.05 < peak <= 10 ** (-1 / 20) + 1e-6


def test_render_to_a_file_returns_its_path_and_keeps_what_exists(tmp_path):
    path = synth.render(Song(events=SHORT, bpm=100), tmp_path / "a.flac")
    assert path == tmp_path / "a.flac"
    info = soundfile.info(path)
    assert info.samplerate == 44_100 and info.channels == 2
    assert info.duration >= 4 * 60 / 100  # the song's own bpm: 4 beats at 100
    with pytest.raises(synth.SynthError, match="exists already"):
        synth.render(SHORT, path)
    assert synth.render(SHORT, str(path), overwrite=True) == path


def test_render_never_replaces_a_file_that_appears_while_it_renders(tmp_path):
    path = tmp_path / "a.wav"

    def another_save(block):  # the name is free when render checks it, taken before its end
        if not path.exists():
            path.write_bytes(b"another save")

    with pytest.raises(synth.SynthError, match="a.wav exists already"):
        synth.render(SHORT, path, tap=another_save)
    assert path.read_bytes() == b"another save"
    assert list(tmp_path.iterdir()) == [path]
    synth.render(SHORT, path, tap=another_save, overwrite=True)  # asked to: replaced
    assert soundfile.info(path).frames > 0


def test_render_takes_effects_and_a_song_or_midi_file(tmp_path):
    make_midi(tmp_path / "m.mid", [[(0, 1, 60), (1, 2, 64)]])
    dry = synth.render(tmp_path / "m.mid", effects=synth.Effects(enabled=False))
    wet = synth.render(str(tmp_path / "m.mid"), effects=synth.Effects(wet=1.0))
    assert dry.shape[1] == wet.shape[1] == 2 and not np.allclose(dry[:1000], wet[:1000])


@pytest.mark.parametrize("call, message", [
    (lambda: synth.render([]), "nothing to render"),
    (lambda: synth.render(SHORT, bpm=1000), "tempo 1000 is out of range"),
    (lambda: synth.render(SHORT, bpm=0), "tempo 0 is out of range"),
    (lambda: synth.write_midi("s.mid", SHORT, bpm=0), "tempo 0 is out of range"),
    (lambda: synth.render(SHORT, humanize=2), "--humanize 2 is out of range"),
    (lambda: synth.render(SHORT, effects=synth.Effects(wet=3)), "--wet 3 is out of range"),
    (lambda: synth.render(SHORT, "song.mp3"), "cannot write .mp3"),
    (lambda: synth.render([(30, 4)]), "class 30 is out of range"),
    (lambda: synth.render("nowhere.txt"), "nowhere.txt: no such file"),
])
def test_render_bad_input_is_a_synth_error(tmp_path, monkeypatch, call, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(synth.SynthError, match=re.escape(message)):
        call()
    assert not any(tmp_path.iterdir())  # nothing half-written


# --- song files and MIDI ----------------------------------------------------------------------


def test_write_song_and_read_song_round_trip(tmp_path):
    events = [Event(13, 6), Event(0, 2), Event(24, 1), Event(1, 32)]
    path = synth.write_song(tmp_path / "s.txt", events, title="round trip", bpm=90)
    assert path == tmp_path / "s.txt"
    song = synth.read_song(path)
    assert song.events == events and song.title == "round trip" and song.bpm == 90
    again = synth.write_song(str(tmp_path / "t.txt"), song, title="renamed")
    back = synth.read_song(again)
    assert back.events == events and back.title == "renamed" and back.bpm == 90
    assert song.title == "round trip"  # the Song given is not changed


def test_write_midi_and_read_it_back(tmp_path):
    events = [Event(13, 4), Event(0, 4), Event(17, 2)]
    path = synth.write_midi(tmp_path / "s.mid", events, bpm=120)
    assert synth.read_song(path).events == events


def test_piano_roll_saves_a_png(tmp_path):
    path = synth.piano_roll(tmp_path / "s.png", SHORT, primer_length=1, title="roll")
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("call, message", [
    (lambda d: synth.write_song(d / "s.txt", []), "cannot save a song with no notes"),
    (lambda d: synth.write_song(d / "s.txt", [(0, 0)]), "length 0 quarter beats"),
    (lambda d: synth.write_song(d / "s.txt", SHORT, bpm=0), "tempo 0 is out of range"),
    (lambda d: synth.read_song(d / "none.mid"), "none.mid"),
    (lambda d: synth.read_song(d), "is a folder"),
])
def test_song_file_bad_input_is_a_synth_error(tmp_path, call, message):
    with pytest.raises(synth.SynthError, match=re.escape(message)):
        call(tmp_path)
    assert not (tmp_path / "s.txt").exists()


def test_write_song_keeps_a_file_that_exists(tmp_path):
    (tmp_path / "s.txt").write_text("13\n")
    with pytest.raises(synth.SynthError, match="exists already"):
        synth.write_song(tmp_path / "s.txt", SHORT)
    assert (tmp_path / "s.txt").read_text() == "13\n"


# --- the command line goes through the API ----------------------------------------------------


def test_cli_compose_and_render_call_the_api(cli, tmp_path, monkeypatch):
    calls = []
    for name in ("load_model", "compose_song", "write_outputs", "render", "read_song",
                 "write_song"):
        real = getattr(api, name)
        monkeypatch.setattr(api, name, lambda *a, _real=real, _name=name, **k:
                            calls.append(_name) or _real(*a, **k))
    code, out, err = cli("compose", "--notes", "12", "--seed", "1", "--out", "a.wav",
                         "--tokens", "a.txt")
    assert code == 0, err
    assert calls == ["compose_song", "load_model", "write_outputs", "render", "write_song"]
    calls.clear()
    code, out, err = cli("render", "a.txt", "--out", "b.wav")
    assert code == 0, err
    assert calls == ["read_song", "write_outputs", "render"]


@pytest.mark.parametrize("even", [False, True], ids=["rhythm", "even"])
def test_one_request_gives_one_song_from_the_api_the_cli_and_the_studio(cli, tmp_path,
                                                                         tiny_model, even):
    """The same request through synth.compose, `synth compose --tokens` and the studio's
    /api/compose: the same events, the primer's included (evened too with `even`)."""
    import shutil
    import warnings

    from synth.music.events import parse_events
    from synth.studio.app import create_app

    with warnings.catch_warnings():  # newer Starlette asks for httpx2; httpx still works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    shutil.copytree(tiny_model, tmp_path / "models" / "tiny")  # a style all three can name
    primer = "C4:1.5 D4:0.5 E4:2 0 G4:3"
    asked = dict(notes=40, seed=5, temperature=0.9, top_p=0.95, even=even)
    primed = evenly(parse_events(primer)) if even else parse_events(primer)
    by_api = primed + synth.compose(style="tiny", primer=primer, **asked)
    request = api.ComposeRequest(40, primer, Sampling(temperature=0.9, top_p=0.95, seed=5),
                                 even, style="tiny")
    assert api.compose_song(request).events == by_api
    code, out, err = cli("compose", "--style", "tiny", "--primer", primer, "--notes", "40",
                         "--seed", "5", "--temperature", "0.9", "--top-p", "0.95",
                         *(["--even"] if even else []), "--out", "a.wav", "--tokens", "a.txt")
    assert code == 0, err
    assert synth.read_song(tmp_path / "a.txt").events == by_api
    with TestClient(create_app(tmp_path)) as client:
        studio = client.post("/api/compose", json={"style": "tiny", "primer": primer,
                                                   **asked}).json()
        client.get("/api/audio", params={"path": studio["wav"]})  # until it is saved
    assert studio["primer"] == 5
    assert [Event(c, q) for c, q in studio["events"]] == by_api
    assert synth.read_song(tmp_path / studio["song"]).events == by_api
    lengths = {e.quarters for e in by_api}
    assert lengths == {4} if even else len(lengths) > 1  # with `even`, the primer's too


def test_cli_compose_imports_nothing_the_api_does_not(tmp_path):
    """The modules `synth compose` loads, less the command line's own (typer, click, rich and
    the standard library), are among those `synth.compose` and `synth.render` load."""
    show = "print('MODULES', *sys.modules)"
    by_cli = run_python(
        "import sys\nfrom synth import cli\n"
        "sys.argv = ['synth', 'compose', '--notes', '20', '--seed', '1', '--out', 'a.wav']\n"
        f"try:\n    cli.main()\nexcept SystemExit:\n    pass\n{show}", tmp_path)
    by_api = run_python("import sys, synth\nsynth.render(synth.compose(notes=20, seed=1), "
                        f"'b.wav')\n{show}", tmp_path)
    assert by_cli.returncode == by_api.returncode == 0, by_cli.stderr + by_api.stderr
    assert (tmp_path / "a.wav").is_file() and (tmp_path / "b.wav").is_file()
    faces = {"typer", "click", "rich", "shellingham", "pygments", "markdown_it", "mdurl",
             "annotated_doc", "typing_extensions"}
    loaded = [set(done.stdout.split("MODULES")[-1].split()) for done in (by_cli, by_api)]
    assert "synth.api" in loaded[0] and "pedalboard" in loaded[1]
    extra = {m for m in loaded[0] - loaded[1]
             if m.split(".")[0] not in faces | sys.stdlib_module_names
             and m != "synth.cli" and not m.startswith("synth.cli.")}
    assert extra == set()


# --- the README's example ---------------------------------------------------------------------


def readme_example(readme: Path = ROOT / "README.md") -> str | None:
    """The first ```python block after the line '## Python API', or None if there is none."""
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    section = re.search(r"^## Python API[ \t]*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    block = section and re.search(r"^```python[ \t]*\n(.*?)^```", section.group(1), re.M | re.S)
    return block.group(1) if block else None


def test_the_readme_api_example_runs(tmp_path):
    example = readme_example()
    if example is None:
        pytest.skip("README.md has no '## Python API' section with a ```python example yet")
    done = run_python(example, tmp_path)  # a fresh process in an empty folder, as a user would
    assert done.returncode == 0, f"the README's example failed:\n{done.stderr}"
    assert list(tmp_path.iterdir()), "the README's example should write something"


def test_write_outputs_writes_the_midi_file_whose_import_ran_beside_the_audio(tmp_path):
    events = [Event(13, 4), Event(17, 2), Event(0, 4), Event(20, 8)]
    outputs = api.Outputs(audio=tmp_path / "song.wav", midi=tmp_path / "song.mid")
    assert api.write_outputs(events, outputs) == [outputs.audio, outputs.midi]
    assert api.read_song(outputs.midi).events == events
    assert soundfile.info(str(outputs.audio)).frames > 0


def test_an_import_aside_that_fails_is_left_to_the_import_that_needs_it():
    api._import_aside("synth_no_such_module").join()  # no exception, nothing printed
    with pytest.raises(ImportError):
        import synth_no_such_module  # noqa: F401
