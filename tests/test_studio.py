"""The studio's HTTP API, called in-process (Starlette's TestClient): every route, its errors,
path traversal attempts and oversized uploads. The browser itself: tests/test_studio_browser.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from conftest import make_midi, random_weights

pytest.importorskip("starlette")
with warnings.catch_warnings():  # newer Starlette asks for httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from synth import api  # noqa: E402
from synth.studio.app import create_app  # noqa: E402
from synth.studio.door import Door  # noqa: E402
from synth.play.phrase_end import GAP_BEATS  # noqa: E402
from synth.studio import server  # noqa: E402

SONG = "# title: Little Tune\n# source: a test\n# bpm: 120\n13 15:2 17 0:0.5 18 20:2\n"


@pytest.fixture
def root(tmp_path):
    """A working directory with two songs, a broken one, a recorded take and composed output."""
    dataset = tmp_path / "dataset"
    (dataset / "takes").mkdir(parents=True)
    (dataset / "little-tune.txt").write_text(SONG)
    (dataset / "other.txt").write_text("1 3 5 6 8 10 12 13\n")
    (dataset / "broken.txt").write_text("13 99\n")
    make_midi(dataset / "takes" / "other.mid", [[(0, 1, 60), (1, 2, 62), (2, 4, 64)]])
    make_midi(dataset / "takes" / "lonely.mid", [[(0, 1, 67), (1, 2, 69)]])
    out = tmp_path / "out"
    out.mkdir()
    (out / "song.txt").write_text("13 13 20 20 22 22 20:2\n")
    soundfile.write(out / "song.wav", np.zeros((4410, 2), np.float32), 44100)
    soundfile.write(out / "live.wav", np.zeros((44100, 2), np.float32), 44100)
    (tmp_path / "secret.txt").write_text("13 15 17\n")
    return tmp_path


PORT = 8000
ORIGIN = f"http://127.0.0.1:{PORT}"
TOKEN = "sesame"
JSON = {"Content-Type": "application/json"}
MIDI = {"Content-Type": "application/octet-stream"}
DUET = f"ws://127.0.0.1:{PORT}/api/duet"  # TestClient's own default host is not one of ours


def studio_client(root, token: str | None = TOKEN, **kwargs) -> TestClient:
    """A client as the studio's own page is: its address, its Origin, the token's cookie."""
    door = Door.serving("127.0.0.1", PORT, token)
    cookies = kwargs.pop("cookies", {door.cookie: token} if token else {})
    return TestClient(create_app(root, door), base_url=ORIGIN, cookies=cookies,
                      headers={"Origin": ORIGIN, **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture
def client(root):
    with studio_client(root) as c:
        yield c


def error(response, status=400) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert "Traceback" not in message and "\n" not in message.strip()
    return message


# --- pages and static files ------------------------------------------------------------


def test_index_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "synth studio" in page.text
    for name in ("app.js", "piano.js", "roll.js", "keyboard.js", "socket.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    first = client.get("/static/app.js")
    assert first.headers["content-type"].startswith("text/javascript")
    again = client.get("/static/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and not again.content  # the browser keeps its copy
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404


def test_piano_samples_are_the_packages_own(client):
    from synth.sound.piano import SAMPLES

    keys = client.get("/api/piano").json()["samples"]
    assert keys and all(isinstance(k, int) for k in keys)
    sample = client.get(f"/piano/{keys[0]}.flac")
    assert sample.status_code == 200
    assert sample.content == (SAMPLES / f"{keys[0]}.flac").read_bytes()
    for bad in ("LICENSE", "..%2F..%2Fcli.py", "48.wav", "999.flac", "x48.flac"):
        assert client.get(f"/piano/{bad}").status_code == 404


def test_the_web_piano_plays_by_the_python_pianos_numbers(client):
    from synth.sound import piano
    from synth.sound.render import live_gain
    from synth.sound.effects import Effects

    got = client.get("/api/piano").json()
    assert got["rate"] == piano.RATE
    assert got["velocity"]["gain"][100] == pytest.approx(piano.note_gain(100))
    assert got["velocity"]["gain"][50] == pytest.approx(piano.note_gain(100) / 4)  # squared
    assert got["velocity"]["shelf"][piano.DEFAULT_VELOCITY] == 0.0
    assert got["velocity"]["shelf"][127] > 0 > got["velocity"]["shelf"][40]
    assert got["damper"]["48"] == pytest.approx(0.3, abs=1e-4)
    assert got["damper"]["71"] == pytest.approx(0.12, abs=1e-4)
    assert got["release"]["level"] == piano.RELEASE_LEVEL
    assert got["level"] == pytest.approx(live_gain(Effects()))
    release = client.get(f"/piano/release/{got['releases'][0]}.flac")
    assert release.content == (piano.SAMPLES / "release" / f"{got['releases'][0]}.flac"
                               ).read_bytes()
    for bad in ("LICENSE", "..%2F48.flac", "999.flac"):
        assert client.get(f"/piano/release/{bad}").status_code == 404


@pytest.mark.parametrize("cutoff", [500.0, 6000.0, 9000.0])
def test_the_web_pianos_low_pass_is_the_chains(client, cutoff):
    """The IIR coefficients the page gets filter an impulse as synth's own low-pass does."""
    from scipy.signal import lfilter

    from synth.sound.effects import Lowpass

    fit = client.get(f"/api/piano?cutoff={cutoff:g}").json()["lowpass"]
    impulse = np.zeros(4096, dtype=np.float32)
    impulse[2048] = 1.0
    ours = Lowpass(cutoff, 44_100)(impulse)[2048:]
    theirs = lfilter(fit["feedforward"], fit["feedback"], impulse[2048:].astype(np.float64))
    assert np.abs(ours - theirs).max() < 1e-3 * np.abs(ours).max()
    spectrum = np.abs(np.fft.rfft(theirs))
    above = spectrum[int(2 * cutoff / 44_100 * len(theirs)):]
    assert 20 * np.log10(above.max() / spectrum[0]) < -20  # 24 dB/octave: -24 an octave up


def test_the_web_piano_refuses_a_cutoff_it_cannot_follow(client):
    answer = client.get("/api/piano?cutoff=30")
    assert answer.status_code == 400 and "30 Hz" in answer.json()["error"]


def test_the_web_pianos_reverb_is_pedalboards(client):
    from synth.sound.effects import Effects, reverb

    got = client.get("/api/piano/reverb?room_size=0.3&wet=0.4")
    assert got.status_code == 200 and got.headers["content-type"] == "audio/wav"
    response, rate = soundfile.read(io.BytesIO(got.content), dtype="float32")
    assert rate == 44_100 and response.shape[1] == 2
    noise = np.random.default_rng(3).normal(0, 0.1, (2, 4000)).astype(np.float32)
    noise[1] = noise[0]  # the live chain feeds the reverb the mono piano on both channels
    ours = reverb(Effects(room_size=0.3, wet=0.4))(noise, rate)
    theirs = np.stack([np.convolve(noise[0], response[:, c])[:4000] for c in (0, 1)])
    assert np.abs(ours - theirs).max() < 1e-3
    for bad in ("room_size=2", "wet=-1", "wet=x", "cutoff=5", "cutoff=nan"):
        answer = client.get(f"/api/piano/reverb?{bad}")
        assert answer.status_code == 400 and "error" in answer.json()


# --- the library ---------------------------------------------------------------------------


def test_library_lists_dataset_takes_and_out(client):
    songs = {s["id"]: s for s in client.get("/api/songs").json()["songs"]}
    tune = songs["dataset/little-tune"]
    assert (tune["title"], tune["source"], tune["events"], tune["bpm"]) == \
        ("Little Tune", "a test", 6, 120)
    assert tune["seconds"] == pytest.approx(7.5 * 60 / 120)
    assert songs["dataset/other"]["take"] == "dataset/takes/other.mid"  # the take behind it
    assert songs["dataset/takes/lonely"]["section"] == "takes"
    assert songs["dataset/broken"]["error"]  # listed, with its error, not hidden
    composed = songs["out/song"]
    assert composed["song"] == "out/song.txt" and composed["wav"] == "out/song.wav"
    assert songs["out/live"]["wav"] == "out/live.wav" and songs["out/live"]["song"] is None
    assert not any("secret" in key for key in songs)


def test_song_events(client):
    song = client.get("/api/song", params={"path": "dataset/little-tune.txt"}).json()
    assert song["events"] == [[13, 4], [15, 8], [17, 4], [0, 2], [18, 4], [20, 8]]
    assert song["title"] == "Little Tune" and song["bpm"] == 120
    take = client.get("/api/song", params={"path": "dataset/takes/other.mid"}).json()
    assert [cls for cls, _ in take["events"]] == [13, 15, 17]


TRAVERSALS = ["../secret.txt", "dataset/../secret.txt", "dataset/../../etc/passwd",
              "/etc/passwd", str(Path("/etc/passwd")), "dataset\\..\\secret.txt",
              "C:/secret.txt", "secret.txt", "synth/cli/commands.py", "dataset/./little-tune.txt",
              "dataset//little-tune.txt", "dataset/.hidden.txt", "dataset/little-tune.py",
              "dataset", "dataset/", "dataset/x.txt\x00.wav", "model/manifest.json", ""]


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest.mark.parametrize("route", ["/api/song", "/api/audio", "/api/download"])
def test_paths_outside_the_folders_are_refused(client, route, path):
    response = client.get(route, params={"path": path, "format": "txt"})
    assert response.status_code == 400
    assert "secret" not in response.text or "not a file the studio serves" in response.text \
        or "expected" in response.text


def test_a_link_out_of_the_folders_is_refused(client, root):
    (root / "dataset" / "link.txt").symlink_to(root / "secret.txt")
    (root / "out" / "escape").symlink_to(root)
    for path in ("dataset/link.txt", "out/escape/secret.txt"):
        assert "leads out" in error(client.get("/api/song", params={"path": path}))
    ids = [s["id"] for s in client.get("/api/songs").json()["songs"]]
    assert "dataset/link" not in ids


def test_missing_song_is_404_and_bad_song_is_its_error(client):
    assert "no such file" in error(client.get("/api/song", params={"path": "dataset/no.txt"}),
                                   404)
    assert "out of range" in error(client.get("/api/song",
                                              params={"path": "dataset/broken.txt"}))
    assert "expected ?path" in error(client.get("/api/song"))


def test_audio_is_rendered_by_the_piano_as_it_is_played(client, root):
    first = client.get("/api/audio", params={"path": "dataset/little-tune.txt"})
    assert first.status_code == 200 and first.headers["content-type"] == "audio/wav"
    assert "content-length" not in first.headers  # streamed, block by block
    samples = np.frombuffer(first.content[44:], np.int16).reshape(-1, 2)
    rate = int.from_bytes(first.content[24:28], "little")
    assert rate == 44100 and first.content[:4] == b"RIFF" and first.content[36:40] == b"data"
    assert len(samples) / rate >= 7.5 * 60 / 120  # the whole song, at its own tempo
    assert 0.05 * 32768 < np.abs(samples).max() <= 10 ** (-1 / 20) * 32768 + 40  # never clips
    rendered, _ = soundfile.read(api.render(root / "dataset" / "little-tune.txt",
                                            root / "rendered.wav"), dtype="int16")
    np.testing.assert_array_equal(samples, rendered)  # the sound `synth render` writes
    again = client.get("/api/audio", params={"path": "dataset/little-tune.txt"})
    assert again.content == first.content
    assert not [p for p in (root / "dataset").iterdir() if p.name.startswith(".")]


def peak_while_playing(library, relative: str) -> tuple[int, str, int]:
    """(the peak of memory traced while the song's audio is taken block by block, a digest of
    its samples, their length in bytes)."""
    import tracemalloc

    digest, size = hashlib.sha256(), 0
    tracemalloc.start()
    try:
        _, blocks = library.audio(relative)
        header = next(blocks)
        for block in blocks:
            digest.update(block)
            size += len(block)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(header) == 44
    return peak, digest.hexdigest(), size


def test_a_long_song_plays_in_flat_memory(tmp_path):
    """A song of 10 000 events (375 s, 66 MB of WAV) plays in about the memory of one of 200."""
    from synth.studio.library import Library

    (tmp_path / "dataset").mkdir()
    for count in (200, 10_000):
        (tmp_path / "dataset" / f"n{count}.txt").write_text(
            "# bpm: 400\n" + " ".join(f"{1 + i % 24}:0.25" for i in range(count)) + "\n")
    library = Library(tmp_path)
    small, _, _ = peak_while_playing(library, "dataset/n200.txt")
    large, digest, size = peak_while_playing(library, "dataset/n10000.txt")
    assert size > 60 * 2**20  # the whole song went by
    assert large < small + 8 * 2**20, (small, large)  # not the song's 66 MB, nor a fifth of it
    rendered = api.render(tmp_path / "dataset" / "n10000.txt", tmp_path / "n10000.wav")
    data = rendered.read_bytes()
    assert data[36:40] == b"data" and len(data) - 44 == size
    assert hashlib.sha256(data[44:]).hexdigest() == digest  # the bytes `synth render` writes


def test_audio_of_a_wav_is_the_file(client, root):
    response = client.get("/api/audio", params={"path": "out/song.wav"})
    assert response.content == (root / "out" / "song.wav").read_bytes()


def test_downloads(client, root):
    def get(path, kind):
        return client.get("/api/download", params={"path": path, "format": kind})

    txt = get("dataset/little-tune.txt", "txt")
    assert txt.text == SONG and "little-tune.txt" in txt.headers["content-disposition"]
    mid = get("dataset/little-tune.txt", "mid")
    midi = mido.MidiFile(file=io.BytesIO(mid.content))
    assert [m.note for m in midi if m.type == "note_on" and m.velocity] == \
        [60, 62, 64, 65, 67]
    assert "little-tune.mid" in mid.headers["content-disposition"]
    wav = get("dataset/little-tune.txt", "wav")
    assert "little-tune.wav" in wav.headers["content-disposition"]
    rendered = api.render(root / "dataset" / "little-tune.txt", root / "rendered.wav")
    assert wav.content == rendered.read_bytes()  # exactly the file `synth render` writes
    assert not [p for p in (root / "dataset").iterdir() if p.name.startswith(".")]
    take = get("dataset/takes/other.mid", "mid")
    assert take.content == (root / "dataset" / "takes" / "other.mid").read_bytes()
    assert "13 15 17:2" in get("dataset/takes/other.mid", "txt").text
    assert "audio only" in error(get("out/live.wav", "txt"))
    assert "expected wav, mid or txt" in error(get("dataset/little-tune.txt", "exe"))


# --- import --------------------------------------------------------------------------------


def midi_bytes(tmp_path, notes=((0, 1, 72), (1, 2, 74), (2, 3, 76))) -> bytes:
    return make_midi(tmp_path / "upload.mid", [list(notes)]).read_bytes()


def test_import_a_dropped_midi_file(client, root, tmp_path):
    response = client.post("/api/import", headers=MIDI, params={"name": "My Song.mid"},
                           content=midi_bytes(tmp_path))
    report = response.json()
    assert response.status_code == 200, report
    assert report["saved"] == "dataset/my-song.txt" and report["events"] == 3
    assert report["shift"] == -1  # moved an octave down into C3-B4, as `synth import` does
    assert (root / "dataset" / "my-song.txt").is_file()
    assert not report["skipped"]
    again = client.post("/api/import", headers=MIDI, params={"name": "My Song.mid"},
                        content=midi_bytes(tmp_path)).json()
    assert again["saved"] == "dataset/my-song.txt" and again["skipped"]  # as `synth import`
    other = client.post("/api/import", headers=MIDI, params={"name": "My Song.mid"},
                        content=midi_bytes(tmp_path, ((0, 2, 72), (2, 3, 71)))).json()
    assert other["saved"] == "dataset/my-song-2.txt"  # never over a song that exists
    assert "dataset/my-song" in [s["id"] for s in client.get("/api/songs").json()["songs"]]
    assert not [p for p in (root / "dataset").iterdir() if p.name.startswith(".")]


def test_import_keeps_a_name_with_a_path_inside_the_dataset(client, root, tmp_path):
    report = client.post("/api/import", headers=MIDI, params={"name": "../../evil.mid"},
                         content=midi_bytes(tmp_path)).json()
    assert report["saved"].startswith("dataset/") and not (root.parent / "evil.txt").exists()


@pytest.mark.parametrize("name, data, says", [
    ("song.mid", b"not a midi file at all", "song.mid"),
    ("song.txt", b"MThd", "expected a MIDI file"),
    ("", b"MThd", "expected a MIDI file"),
    (".mid", b"MThd", "expected a MIDI file"),
])
def test_import_refuses_bad_files(client, root, name, data, says):
    before = sorted(p.name for p in (root / "dataset").iterdir())
    assert says in error(client.post("/api/import", headers=MIDI, params={"name": name},
                                     content=data))
    assert sorted(p.name for p in (root / "dataset").iterdir()) == before


def test_import_refuses_oversized_uploads(client, root):
    from synth.studio.library import MAX_UPLOAD

    big = b"MThd" + bytes(MAX_UPLOAD)
    assert "limit" in error(client.post("/api/import", headers=MIDI, params={"name": "big.mid"},
                                        content=big))

    def chunks():  # no Content-Length: refused while reading
        for _ in range(MAX_UPLOAD // 65536 + 2):
            yield bytes(65536)

    assert "limit" in error(client.post("/api/import", headers=MIDI, params={"name": "big.mid"},
                                        content=chunks()))


# --- styles and compose --------------------------------------------------------------------


def test_styles(client, root):
    from synth.learn.model import save_model

    from synth.learn import styles

    shipped = [s.name for s in styles.installed(root)]
    listed = client.get("/api/styles").json()["styles"]
    assert [s["name"] for s in listed] == shipped and shipped[0] == "default"
    save_model(root / "models" / "folk", random_weights(), {})
    (root / "models" / "empty").mkdir()
    listed = client.get("/api/styles").json()["styles"]
    names = [s["name"] for s in listed]
    assert "folk" in names and "empty" not in names and names[0] == "default"
    folk = next(s for s in listed if s["name"] == "folk")
    assert folk == {"name": "folk", "packaged": False, "folder": "models/folk"}


def test_compose_saves_in_out_and_lists_it(client, root):
    response = client.post("/api/compose", json={"notes": 24, "seed": 3, "bpm": 160,
                                                  "primer": "C4 E4:2", "temperature": 0.9})
    song = response.json()
    assert response.status_code == 200, song
    assert song["song"] == "out/song-2.txt"  # out/song.* exists already
    assert len(song["events"]) == 26 and song["events"][:2] == [[13, 4], [17, 8]]
    streamed = client.get("/api/audio", params={"path": song["wav"]})  # while it is saved
    assert streamed.status_code == 200 and streamed.content[:4] == b"RIFF"
    samples = np.frombuffer(streamed.content[44:], np.int16).reshape(-1, 2)
    saved_audio, _ = soundfile.read(root / "out" / "song-2.wav", dtype="int16")
    np.testing.assert_array_equal(samples, saved_audio)  # the same sound as the saved file
    for name in ("song-2.txt", "song-2.wav", "song-2.mid"):
        assert (root / "out" / name).stat().st_size > 0
    info = soundfile.info(str(root / "out" / "song-2.wav"))
    beats = sum(q for _, q in song["events"]) / 4
    assert info.duration >= beats * 60 / 160
    saved = client.get("/api/song", params={"path": "out/song-2.txt"}).json()
    assert saved["events"] == song["events"] and saved["bpm"] == 160
    listed = {s["id"]: s for s in client.get("/api/songs").json()["songs"]}["out/song-2"]
    assert listed["wav"] == "out/song-2.wav" and listed["midi"] == "out/song-2.mid"
    same = client.post("/api/compose", json={"notes": 24, "seed": 3, "bpm": 160,
                                             "primer": "C4 E4:2", "temperature": 0.9}).json()
    assert same["events"] == song["events"] and same["song"] == "out/song-3.txt"


def test_compose_never_saves_over_a_file_that_appears_while_it_saves(client, root,
                                                                       monkeypatch):
    from synth.studio import library as studio_library

    write_outputs = studio_library.api.write_outputs

    def and_another_save(events, outputs, *args, **kwargs):  # out/song-2.* is free when
        if outputs.song is not None:  # checked; another save takes song-2.mid meanwhile
            (root / "out" / "song-2.mid").write_bytes(b"another save")
        return write_outputs(events, outputs, *args, **kwargs)

    monkeypatch.setattr(studio_library.api, "write_outputs", and_another_save)
    song = client.post("/api/compose", json={"notes": 12, "seed": 4}).json()
    assert song["song"] == "out/song-3.txt" and song["midi"] == "out/song-3.mid"
    assert (root / "out" / "song-2.mid").read_bytes() == b"another save"  # kept
    assert not (root / "out" / "song-2.txt").exists()  # no half of a save under song-2
    client.get("/api/audio", params={"path": song["wav"]})  # until it is saved
    assert soundfile.info(str(root / "out" / "song-3.wav")).frames > 0
    assert not [p for p in (root / "out").iterdir() if p.name.startswith(".")]


def test_compose_never_renders_over_a_wav_that_appears_while_it_renders(client, root,
                                                                        monkeypatch):
    from synth.studio.library import Rendering

    add, finish, ended = Rendering.add, Rendering.finish, []

    def finished(self, error=""):
        ended.append(error)
        finish(self, error)

    def and_another_save(self, block):  # the WAV's name was free when claimed with the song
        wav = root / "out" / "song-2.wav"
        if not wav.exists():
            wav.write_bytes(b"another save")
        add(self, block)

    monkeypatch.setattr(Rendering, "add", and_another_save)
    monkeypatch.setattr(Rendering, "finish", finished)
    song = client.post("/api/compose", json={"notes": 12, "seed": 4}).json()
    assert song["wav"] == "out/song-2.wav"
    rendering = client.app.state.library.rendering(song["wav"])
    if rendering is not None:
        rendering.wait()
    assert len(ended) == 1 and "song-2.wav exists already" in ended[0]
    assert (root / "out" / "song-2.wav").read_bytes() == b"another save"
    assert not [p for p in (root / "out").iterdir() if p.name.startswith(".")]


def test_compose_with_a_style_and_without_effects(client, root):
    from synth.learn.model import save_model

    save_model(root / "models" / "folk", random_weights(), {})
    song = client.post("/api/compose", json={"notes": 10, "style": "folk", "effects": False,
                                              "even": True}).json()
    client.get("/api/audio", params={"path": song["wav"]})  # until it is saved
    assert len(song["events"]) == 10 and all(q == 4 for _, q in song["events"])
    assert "folk" in (root / song["song"]).read_text()


@pytest.mark.parametrize("request_body, says", [
    ({"notes": 0}, "notes"), ({"notes": "many"}, "notes"), ({"notes": 2.5}, "notes"),
    ({"notes": 10**9}, "notes"), ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top"), ({"bpm": 0}, "tempo"), ({"bpm": "fast"}, "bpm"),
    ({"seed": -1}, "seed"), ({"style": "nope"}, "'nope' is not installed"),
    ({"primer": "C4 H9"}, "H9"), ({"room_size": 3}, "room"), ({"cutoff": 5}, "cutoff"),
    ({"effects": "yes"}, "effects"), ([1, 2], "JSON object"),
])
def test_compose_refuses_bad_settings_and_writes_nothing(client, root, request_body, says):
    before = sorted(p.name for p in (root / "out").iterdir())
    assert says in error(client.post("/api/compose", json=request_body))
    assert sorted(p.name for p in (root / "out").iterdir()) == before


def test_compose_refuses_what_is_not_json(client):
    assert "not JSON" in error(client.post("/api/compose", content=b"{notes: 3", headers=JSON))


# --- record --------------------------------------------------------------------------------


TAKE = {"name": "Morning Take", "bpm": 120, "seconds": 2.2,
        "messages": [[0.0, 60, 90], [0.45, 60, 0], [0.5, 62, 80], [0.95, 62, 0],
                     [1.0, 64, 100], [1.9, 64, 0], [1.95, 90, 70], [2.0, 90, 0]]}


def test_record_saves_a_take_as_synth_record_does(client, root):
    response = client.post("/api/record", json=TAKE)
    saved = response.json()
    assert response.status_code == 200, saved
    assert saved["song"] == "dataset/morning-take.txt"
    assert saved["take"] == "dataset/takes/morning-take.mid"
    assert [cls for cls, _ in saved["events"]] == [13, 15, 17]
    assert saved["outside"] == 1  # the F#6 is kept in the raw take, not in the song
    text = (root / "dataset" / "morning-take.txt").read_text()
    assert "# bpm: 120" in text and "the studio" in text
    raw = mido.MidiFile(root / "dataset" / "takes" / "morning-take.mid")
    assert [m.note for m in raw if m.type == "note_on" and m.velocity] == [60, 62, 64, 90]
    again = client.post("/api/record", json=TAKE).json()
    assert again["song"] == "dataset/morning-take-2.txt"  # never over a song that exists
    assert saved["merged"] == [] and saved["warning"] is None


def test_record_names_the_notes_too_fast_for_the_grid(client, root):
    # 150 bpm, 0.1 s a quarter beat: C4, then D4, E4 and F4 50 ms apart, then G4. D4 and
    # E4 land on quarter beats 4 and 5, F4 on E4's: with D4 on the point before, E4 is merged.
    times = [0.0, 0.4, 0.45, 0.5, 0.9]
    messages = [[t, p, 80] for t, p in zip(times, [60, 62, 64, 65, 67])]
    messages = sorted(messages + [[t + 0.03, p, 0] for t, p, _ in messages])
    response = client.post("/api/record", json={"name": "fast", "bpm": 150, "seconds": 1.2,
                                                "messages": messages})
    saved = response.json()
    assert response.status_code == 200, saved
    assert saved["merged"] == ["E4"]
    assert saved["warning"] == ("1 note faster than a quarter beat at 150 bpm was merged: E4; "
                                "record at a slower tempo to keep them")
    assert [cls for cls, _ in saved["events"] if cls] == [13, 15, 18, 20]


def test_record_keeps_notes_played_during_the_count_in_as_the_pickup(client, root):
    # 120 bpm, a count-in of 2 beats (1 s): G3 a beat before beat 1, A3 half a beat before,
    # then C4 on beat 1 and D4 on beat 2; times run from beat 1, so the pickup's are negative
    messages = [[-0.5, 55, 80], [-0.3, 55, 0], [-0.25, 57, 80], [-0.05, 57, 0],
                [0.0, 60, 90], [0.4, 60, 0], [0.5, 62, 90], [0.9, 62, 0]]
    response = client.post("/api/record", json={"name": "pickup", "bpm": 120, "count_in": 2,
                                                "seconds": 1.2, "messages": messages})
    saved = response.json()
    assert response.status_code == 200, saved
    assert saved["events"][:2] == [[8, 2], [10, 2]]  # G3 and A3 kept, a quarter note each
    assert [cls for cls, _ in saved["events"] if cls] == [8, 10, 13, 15]
    assert saved["pickup"] == 1.0  # the song starts a beat before beat 1
    raw = mido.MidiFile(root / "dataset" / "takes" / "pickup.mid")
    presses = [m.note for m in raw if m.type == "note_on" and m.velocity]
    assert presses == [55, 57, 60, 62]  # the raw take runs from the count-in's first beat
    assert raw.length == pytest.approx(1.0 + 0.9, abs=0.01)
    plain = client.post("/api/record", json={**TAKE, "name": "plain"}).json()
    assert plain["pickup"] == 0.0  # no count-in, no pickup: times from 0 as before


@pytest.mark.parametrize("change, says", [
    ({"messages": [[-0.1, 60, 90]]}, "back to -0,"),  # no count-in: nothing before beat 1
    ({"count_in": 2, "messages": [[-1.1, 60, 90]]}, "count-in's start"),  # 1 s at 120 bpm
    ({"count_in": 40}, "0-32"), ({"count_in": 1.5}, "count_in"), ({"count_in": "2"}, "count_in"),
    ({"messages": []}, "no notes"), ({"messages": "x"}, "messages"),
    ({"messages": [[0, 60]]}, "messages[0]"), ({"messages": [[1, 60, 90], [0.5, 60, 0]]},
                                               "out of order"),
    ({"messages": [[0, 200, 90]]}, "0-127"), ({"messages": [[0, 60, 1.5]]}, "0-127"),
    ({"bpm": 5}, "tempo"), ({"bpm": None}, "bpm"), ({"name": 5}, "name"),
    ({"seconds": "long"}, "seconds"), ({"messages": [[float("inf"), 60, 90]]}, "messages[0]"),
])
def test_record_refuses_bad_takes_and_writes_nothing(client, root, change, says):
    before = sorted(p.name for p in (root / "dataset").rglob("*"))
    body = json.dumps({**TAKE, **change}, allow_nan=True)
    assert says in error(client.post("/api/record", content=body, headers=JSON))
    assert sorted(p.name for p in (root / "dataset").rglob("*")) == before


# --- train ---------------------------------------------------------------------------------


def test_train_status_and_refusals(client, root):
    status = client.get("/api/train").json()
    assert status["state"] == "idle" and status["folders"] == ["dataset"]
    (root / "dataset" / "irish").mkdir()
    (root / "dataset" / "irish" / "a.txt").write_text("13 15\n")
    assert client.get("/api/train").json()["folders"] == ["dataset", "dataset/irish"]
    for body, says in [({"style": "../x"}, "style"), ({"style": "A B"}, "style"),
                       ({"dataset": "../etc"}, "dataset"), ({"dataset": "/tmp"}, "dataset"),
                       ({"dataset": "dataset/none"}, "no such folder"),
                       ({"epochs": 0}, "epochs")]:
        assert says in error(client.post("/api/train", json=body))
    assert client.get("/api/train").json()["state"] == "idle"
    assert client.post("/api/train/stop").json()["state"] == "idle"


@pytest.mark.slow
def test_train_a_style_from_the_page(client, root):
    folk = root / "dataset" / "folk"
    folk.mkdir()
    for i in range(8):
        source = "folk tunes" if i < 6 else "something else"
        (folk / f"t{i}.txt").write_text(f"# source: {source}\n" +
                                        " ".join(str(1 + (i + k) % 24) for k in range(40)))
    started = client.post("/api/train", json={"style": "folk", "dataset": "dataset/folk",
                                              "source": "FOLK", "epochs": 1}).json()
    assert started["state"] == "running" and started["target"] == "models/folk"
    assert "--style folk" in started["lines"][0] and "--source FOLK" in started["lines"][0]
    assert "running already" in error(client.post("/api/train", json={"epochs": 1}))
    deadline = time.monotonic() + 240
    while client.get("/api/train").json()["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    status = client.get("/api/train").json()
    assert status["state"] == "done", status["lines"]
    assert any("epoch 1/1" in line for line in status["lines"])
    assert (root / "models" / "folk" / "manifest.json").is_file()
    assert "folk" in [s["name"] for s in client.get("/api/styles").json()["styles"]]
    song = client.post("/api/compose", json={"notes": 5, "style": "folk"}).json()
    assert len(song["events"]) == 5


# --- the duet socket -----------------------------------------------------------------------


def play_phrase(ws, notes, step=0.12):
    for note in notes:
        ws.send_json({"type": "down", "note": note, "velocity": 90})
        time.sleep(step * 0.8)
        ws.send_json({"type": "up", "note": note})
        time.sleep(step * 0.2)


def receive_until(ws, kind, limit=100):
    seen = []
    for _ in range(limit):
        message = ws.receive_json()
        seen.append(message)
        if message["type"] == kind:
            return message, seen
    raise AssertionError(f"no {kind} in {seen}")


def test_duet_follows_live_s_phrase_end_in_beats_by_default(client):
    with client.websocket_connect(DUET) as ws:
        ws.send_json({"type": "start", "gap_beats": 0})
        assert "--gap-beats" in ws.receive_json()["error"]
        ws.send_json({"type": "start", "overlap": True, "gap_beats": 2})
        assert ws.receive_json() == {"type": "ready", "gap": None, "gap_beats": 2}


def test_duet_answers_a_phrase_with_events(client):
    with client.websocket_connect(DUET) as ws:
        ws.send_json({"type": "start", "gap": 0.2, "seed": 1, "respond": 4})
        assert ws.receive_json() == {"type": "ready", "gap": 0.2, "gap_beats": GAP_BEATS}
        play_phrase(ws, [60, 62, 64, 65])
        answered, seen = receive_until(ws, "answered")
        answer = next(m for m in seen if m["type"] == "answer")
        assert answer["delay"] >= 0 and answer["notes"]
        on, off, pitch, velocity = answer["notes"][0]
        assert 0 <= on < off and 48 <= pitch <= 71 and 1 <= velocity <= 127
        assert answered["gap"] == 0.2
        assert answered["latency_ms"] > 0 and [name.split(":")[0] for name in answered["phrase"]] == \
            ["C4", "D4", "E4", "F4"]
        finished, _ = receive_until(ws, "finished")
        assert len(finished["answer"]) == 4 and not finished["interrupted"]
        ws.send_json({"type": "stop"})


def test_duet_refuses_bad_messages_and_goes_on(client):
    with client.websocket_connect(DUET) as ws:
        ws.send_json({"type": "down", "note": 60})
        assert "start" in ws.receive_json()["error"]
        ws.send_text("{not json")
        assert "JSON" in ws.receive_json()["error"]
        ws.send_json({"type": "start", "gap": 99})
        assert "gap" in ws.receive_json()["error"]
        ws.send_json({"type": "start", "style": "nope"})
        assert "nope" in ws.receive_json()["error"]
        ws.send_json({"type": "start", "gap": 0.2})
        assert ws.receive_json()["type"] == "ready"
        ws.send_json({"type": "down", "note": 300})
        assert "0-127" in ws.receive_json()["error"]
        ws.send_json({"type": "dance"})
        assert "unknown" in ws.receive_json()["error"]
        ws.send_json({"type": "start"})
        assert "already" in ws.receive_json()["error"]


# --- the door: token, Host, Origin, content types --------------------------------------------


def test_the_token_comes_in_the_address_once_then_a_cookie(root):
    with studio_client(root, cookies={}) as c:
        assert "token" in error(c.get("/"), 403)
        assert "token" in error(c.get("/api/songs"), 403)
        assert "wrong" in error(c.get("/", params={"token": "wrong"}), 403)
        opened = c.get("/", params={"token": TOKEN, "x": "1"}, follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/?x=1"
        cookie = opened.headers["set-cookie"]
        assert f"synth_token_{PORT}={TOKEN}" in cookie and "HttpOnly" in cookie \
            and "SameSite=strict" in cookie
        assert c.get("/").status_code == 200 and c.get("/api/songs").status_code == 200
        c.cookies.clear()
        api = c.get("/api/songs", params={"token": TOKEN})  # an API call: answered, no redirect
        assert api.status_code == 200 and "set-cookie" in api.headers
        c.cookies.clear()
        assert c.get("/api/songs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code \
            == 200


@pytest.mark.parametrize("given", ["é", "sesamé", "\u00b2", "🎹" * 40, "", "sesam"])
def test_a_non_ascii_or_near_token_is_a_403_not_a_500(root, given):
    with studio_client(root) as c:
        c.cookies.clear()
        assert error(c.get("/", params={"token": given}), 403)
        assert error(c.get("/api/songs", headers={"Authorization": f"Bearer {given}".encode()}),
                     403)
        cookie = f"synth_token_{PORT}={given}".encode()
        assert error(c.get("/api/songs", headers={"Cookie": cookie}), 403)


def test_the_issues_cross_site_record_and_train_are_refused_and_change_nothing(root):
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    evil = {"Content-Type": "text/plain", "Origin": "http://attacker.example",
            "Host": "attacker.example"}
    for token in (TOKEN, None):
        with studio_client(root, token=token) as c:
            c.cookies.clear()
            for route, body in (("/api/record", TAKE), ("/api/train", {"epochs": 1}),
                                ("/api/compose", {"notes": 3})):
                answer = c.post(route, content=json.dumps(body), headers=evil)
                assert answer.status_code == 403, answer.text
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


@pytest.mark.parametrize("origin", ["http://attacker.example", "http://127.0.0.1:9000",
                                    "http://localhost:8001", "null", "https://127.0.0.1:8000",
                                    "http://127.0.0.1:8000.attacker.example"])
def test_writes_and_the_duet_need_the_studios_own_origin(client, root, origin):
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    for route in ("/api/compose", "/api/record", "/api/train", "/api/train/stop"):
        assert "only the studio's own page" in error(
            client.post(route, json=TAKE, headers={"Origin": origin}), 403)
    assert error(client.post("/api/import", params={"name": "a.mid"}, content=b"MThd",
                             headers={**MIDI, "Origin": origin}), 403)
    from starlette.testclient import WebSocketDenialResponse
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises((WebSocketDenialResponse, WebSocketDisconnect)):
        with client.websocket_connect(DUET, headers={"Origin": origin}) as ws:
            ws.receive_json()
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_localhost_is_the_studios_own_origin_too(client):
    local = f"http://localhost:{PORT}"
    assert client.get("/api/songs", headers={"Host": f"localhost:{PORT}"}).status_code == 200
    answer = client.post("/api/compose", json={"notes": 0}, headers={"Origin": local})
    assert "notes" in error(answer)  # past the door: the route's own refusal


def test_a_write_without_origin_needs_the_token_in_hand(root):
    with studio_client(root) as c:
        del c.headers["Origin"]
        # the cookie alone is what a browser adds by itself: not enough without an Origin
        assert "Origin" in error(c.post("/api/compose", json={"notes": 0}), 403)
        c.cookies.clear()
        answer = c.post("/api/compose", json={"notes": 0},
                        headers={"Authorization": f"Bearer {TOKEN}"})
        assert "notes" in error(answer)  # curl with the token gets in
        assert "notes" in error(c.post("/api/compose", json={"notes": 0},
                                       params={"token": TOKEN}))
    with studio_client(root, token=None) as c:  # --no-token: writes only from the page
        del c.headers["Origin"]
        assert error(c.post("/api/compose", json={"notes": 0}), 403)
        assert c.get("/api/songs").status_code == 200


def test_requests_the_browser_marks_as_from_another_site_are_refused(client):
    for site in ("cross-site", "same-site"):
        headers = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors"}
        assert error(client.get("/api/audio", params={"path": "out/song.wav"},
                                headers=headers), 403)
        navigate = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate"}
        assert client.get("/", headers=navigate).status_code == 200  # a link to the studio
    same = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    assert client.get("/api/songs", headers=same).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "127.0.0.1.nip.io", "localhost.",
                                  "192.168.1.20"])
def test_other_host_names_are_refused_against_dns_rebinding(client, host):
    answer = client.get("/api/songs", headers={"Host": f"{host}:{PORT}"})
    assert answer.status_code == 400 and answer.text == "Invalid host header"


@pytest.mark.parametrize("route, kind", [
    ("/api/compose", "text/plain"), ("/api/record", "application/x-www-form-urlencoded"),
    ("/api/train", "multipart/form-data; boundary=x"), ("/api/compose", ""),
    ("/api/import?name=a.mid", "text/plain"), ("/api/import?name=a.mid", "application/json"),
])
def test_bodies_of_the_wrong_type_are_415(client, root, route, kind):
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    headers = {"Content-Type": kind} if kind else {}
    assert "Content-Type" in error(client.post(route, content=b"{}", headers=headers), 415)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


@pytest.mark.parametrize("length", ["\u00b2", "-1", "1" * 30])
def test_a_content_length_that_is_not_a_count_is_a_400(client, root, length):
    answer = client.post("/api/import", params={"name": "a.mid"}, content=b"MThd",
                         headers={**MIDI, "Content-Length": length.encode()})
    assert "Content-Length" in error(answer)


def test_json_with_a_charset_is_json(client):
    answer = client.post("/api/compose", content=b'{"notes": 0}',
                         headers={"Content-Type": "application/json; charset=utf-8"})
    assert "notes" in error(answer)


@pytest.mark.parametrize("since", ["\u00b2", "-1", "1.5", "x", "9" * 30])
def test_train_status_refuses_a_since_that_is_not_a_count(client, since):
    assert "since" in error(client.get("/api/train", params={"since": since}))


def test_no_token_is_for_this_machine_only():
    from synth.errors import SynthError

    with pytest.raises(SynthError, match="--no-token"):
        Door.serving("0.0.0.0", PORT, None)
    assert Door.serving("127.0.0.1", PORT, None).token is None
    door = Door.serving("0.0.0.0", PORT, "t", ["studio.lan"])
    assert {"127.0.0.1", "localhost", "studio.lan"} <= set(door.hosts)
    assert f"http://studio.lan:{PORT}" in door.origins
    assert "http://[::1]:8000" in Door.serving("::1", PORT, "t").origins


def test_an_ipv6_studio_takes_its_own_bracketed_host(root):
    door = Door.serving("::1", PORT, None)
    origin = f"http://[::1]:{PORT}"
    with TestClient(create_app(root, door), base_url=origin, headers={"Origin": origin}) as c:
        assert c.get("/api/songs").status_code == 200
        assert "notes" in error(c.post("/api/compose", json={"notes": 0}))
        assert c.get("/api/songs", headers={"Host": f"[::2]:{PORT}"}).status_code == 400


# --- serving -------------------------------------------------------------------------------


def test_the_next_free_port_is_taken_when_one_is_busy():
    port = free_port()
    busy = server.bind("127.0.0.1", port)  # now taken
    assert busy.getsockname()[1] == port
    try:
        other = server.bind("127.0.0.1", port)
        assert other.getsockname()[1] > port
        other.close()
    finally:
        busy.close()
    with pytest.raises(Exception, match="--port"):
        server.bind("127.0.0.1", 70000)


def test_url_shows_the_token_and_a_reachable_address():
    assert server.url_of("127.0.0.1", 8000) == "http://127.0.0.1:8000/"
    assert server.url_of("0.0.0.0", 8001, "t") == "http://127.0.0.1:8001/?token=t"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("host, flags", [("127.0.0.1", []), ("0.0.0.0", []),
                                         ("127.0.0.1", ["--no-token"])])
def test_synth_studio_serves_until_ctrl_c(root, host, flags):
    import httpx

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    process = subprocess.Popen([sys.executable, "-m", "synth.cli", "studio", "--no-browser",
                                "--port", str(port), "--host", host, *flags], cwd=root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not any("synth studio: http" in line for line in lines):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        url = next(l for l in lines if "http" in l).split()[2]
        assert f":{port}/" in url
        assert any("warning" in line for line in lines) == (host == "0.0.0.0")
        if flags:
            assert "token=" not in url
        else:
            assert "token=" in url
            assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 403
        with httpx.Client(follow_redirects=True) as browser:
            page = browser.get(url)
            assert page.status_code == 200 and "synth studio" in page.text
            assert browser.get(f"http://127.0.0.1:{port}/api/songs").status_code == 200
        process.send_signal(2)  # Ctrl-C
        rest = process.communicate(timeout=20)[0]
        assert process.returncode == 0, rest
        assert "stopped" in rest and "Traceback" not in rest
    finally:
        if process.poll() is None:
            process.kill()


def test_synth_studio_refuses_no_token_beyond_this_machine(root):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    done = subprocess.run([sys.executable, "-m", "synth.cli", "studio", "--no-browser",
                           "--host", "0.0.0.0", "--no-token"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--no-token" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
