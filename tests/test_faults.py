"""Fault injection: `record`, `live` and `import` run as real processes and are killed with
SIGKILL (as the out-of-memory killer or a power cut ends them: no handler runs) at seeded
moments. Each time: no half-written file under a name the user sees, and what was played,
answered or imported up to the kill is there, once.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import mido
import pytest
import soundfile

from conftest import make_midi
from synth.music.midi import file_notes
from synth.music.songs import read_song
from test_live import phrases
from test_record import replay, synth_process, wait_for_output

pytestmark = pytest.mark.slow
SEEDS = [11, 22, 33]


def start(args, cwd):
    """A synth command in a process group of its own (import's workers die with it)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return synth_process(args, cwd, stdin=subprocess.DEVNULL, start_new_session=True, env=env)


def read_for(process, seconds: float) -> bytes:
    """What the process prints in the next `seconds`."""
    seen = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], min(left, 0.02))
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                time.sleep(max(deadline - time.monotonic(), 0))
                break
            seen += chunk
    return seen


def kill(process) -> float:
    """SIGKILL to the whole process group; the moment it was sent."""
    killed = time.monotonic()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=20)
    process.stdout.close()
    process.stderr.close()
    return killed


def visible(folder: Path) -> list[Path]:
    """The files under `folder` a user sees (hidden names, starting with a dot, are not)."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".")
                                             for part in p.relative_to(folder).parts))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_killed_take_loses_at_most_its_last_half_second(cli, tmp_path, seed):
    rng = random.Random(seed)
    # 40 notes, one every 0.2 s, each a beat at 300 bpm; pitches that all differ in a row
    notes = [(0.2 * i, 0.2 * i + 0.15, 48 + (i * 5) % 24) for i in range(40)]
    process = start(["record", "--input", replay(tmp_path / "p.mid", notes), "--count-in", "0",
                     "--bpm", "300"], tmp_path)
    wait_for_output(process, "play!")
    began = time.monotonic()  # the replay began before "play!" was printed: no later
    read_for(process, rng.uniform(0.8, 4.0))
    played_for = kill(process) - began

    assert visible(tmp_path / "dataset") == []  # nothing saved yet, nothing half-saved
    code, out, err = cli("recover")
    assert code == 0, err
    assert out.count("Recovered an unfinished take") == 1
    sure = [pitch for onset, _, pitch in notes if onset <= played_for - 0.5]
    song = read_song(tmp_path / "dataset/take.txt")
    pitches = [e.cls + 47 for e in song.events if not e.is_rest]
    assert pitches[: len(sure)] == sure and len(pitches) < len(notes)
    raw, _ = file_notes(mido.MidiFile(tmp_path / "dataset/takes/take.mid"))
    assert [n.pitch for n in raw][: len(sure)] == sure
    assert not list((tmp_path / "dataset").rglob(".*"))  # the journal is gone once saved
    assert_whole(tmp_path / "dataset")


@pytest.mark.parametrize("seed", SEEDS)
def test_a_killed_session_leaves_a_playable_wav_and_every_answer_logged(tmp_path, tiny_model,
                                                                         seed):
    rng = random.Random(seed)
    source = replay(tmp_path / "p.mid", phrases(20, pause=0.5))
    process = start(["live", "--input", source, "--model", str(tiny_model), "--output",
                     "wav:s.wav", "--log", "log.jsonl", "--gap", "0.2", "--bpm", "400",
                     "--seed", str(seed)], tmp_path)
    shown = wait_for_output(process, "Ctrl-C ends.")
    began = time.monotonic()  # the WAV's first frame is older than this
    shown += read_for(process, rng.uniform(1.0, 5.0))
    played_for = kill(process) - began

    answered = len(re.findall(rb"\(\d+ bpm", shown))  # printed once each answer was logged
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) >= answered
    assert all(set(json.loads(line)) >= {"phrase", "answer", "latency_ms"} for line in lines)
    info = soundfile.info(tmp_path / "s.wav")
    assert info.samplerate == 44100 and info.channels == 2
    assert info.duration >= played_for - 1.0
    with wave.open(str(tmp_path / "s.wav")) as header:  # a reader that trusts the header
        assert header.getnframes() / header.getframerate() >= played_for - 1.0
    audio, _ = soundfile.read(tmp_path / "s.wav")
    assert len(audio) == info.frames and abs(audio).max() > 0.01  # it plays, and sounds
    assert not list(tmp_path.glob(".*"))  # nothing hidden left to recover
    assert_whole(tmp_path)


@pytest.fixture(scope="module")
def many_files(tmp_path_factory):
    """200 small MIDI files: enough for import to use its pool and take a moment."""
    folder = tmp_path_factory.mktemp("midi")
    for index in range(200):
        notes = [(beat / 2, beat / 2 + 0.5, 48 + (index * 7 + beat * 5) % 24)
                 for beat in range(8 + index % 24)]
        make_midi(folder / f"tune_{index:03d}.mid", [notes])
    return folder


@pytest.mark.parametrize("seed", SEEDS)
def test_a_killed_import_run_again_writes_each_song_once(cli, tmp_path, many_files, seed):
    rng = random.Random(seed)
    dataset = tmp_path / "dataset"
    process = start(["import", str(many_files)], tmp_path)
    enough = rng.randint(1, 120)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if dataset.is_dir() and len(list(dataset.glob("*.txt"))) >= enough:
            break
        time.sleep(0.002)
    kill(process)

    before = visible(dataset) if dataset.is_dir() else []
    for path in before:
        read_song(path)  # whole: it parses
    code, out, err = cli("import", many_files)
    assert code == 0, err
    flat = " ".join(out.replace("│", " ").replace("┃", " ").split())
    assert f"imported {200 - len(before)} failed 0 already there {len(before)}" in flat
    sources = [read_song(path).source for path in visible(dataset)]
    assert len(sources) == 200 and len(set(sources)) == 200


# --- every file under its final name whole, whatever kills the command ---------------------


def assert_whole(folder: Path) -> list[Path]:
    """Every file a user sees under `folder` opens and reads to its end in the reader meant for
    it (song files parse, MIDI files load, WAVs open in wave and in soundfile with every frame
    their header counts, model folders load); the files seen."""
    from synth.learn.model import load_model

    seen = visible(folder) if folder.is_dir() else []
    for path in seen:
        if path.suffix == ".txt":
            read_song(path)
        elif path.suffix == ".mid":
            mido.MidiFile(path)
        elif path.suffix == ".wav":
            with wave.open(str(path)) as reader:
                frames = reader.getnframes()
                assert len(reader.readframes(frames)) == frames * reader.getsampwidth() * \
                    reader.getnchannels(), path
            audio, _ = soundfile.read(path)
            assert len(audio) == soundfile.info(path).frames == frames, path
        elif path.name == "manifest.json":
            load_model(path.parent)
    return seen


def partials(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.part*"))


def wait_for(condition, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.005)


def long_song(path: Path, events: int = 600) -> Path:
    from synth.music.events import Event
    from synth.music.songs import Song, write_song

    write_song(path, Song(events=[Event(13 + i % 12, 2) for i in range(events)], title="long"))
    return path


@pytest.mark.parametrize("command", ["compose", "render"])
def test_sigterm_during_a_write_removes_the_partial_file(tmp_path, command):
    args = ["compose", "--notes", "600", "--seed", "3", "--out", "out/x.wav"] \
        if command == "compose" else ["render", str(long_song(tmp_path / "long.txt")),
                                      "--out", "out/x.wav"]
    process = start(args, tmp_path)
    wait_for(lambda: partials(tmp_path) or process.poll() is not None)
    assert partials(tmp_path), "the write was over before it could be stopped"
    os.killpg(process.pid, signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 130  # ended as Ctrl-C ends it
    assert partials(tmp_path) == [] and not (tmp_path / "out/x.wav").exists()


def test_sigterm_during_an_import_keeps_whole_songs_only(tmp_path, many_files):
    process = start(["import", str(many_files)], tmp_path)
    wait_for(lambda: len(visible(tmp_path / "dataset")) >= 20
             if (tmp_path / "dataset").is_dir() else process.poll() is not None)
    os.killpg(process.pid, signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 130  # stopped as Ctrl-C stops it, before the 200th song
    assert partials(tmp_path) == []
    assert 20 <= len(assert_whole(tmp_path / "dataset")) < 200


def test_sigterm_during_train_leaves_the_old_model_and_no_partial_file(tmp_path, tiny_model):
    from test_train import small_songs
    from synth.music.songs import write_song

    for song in small_songs(8):
        write_song(tmp_path / "dataset" / f"{song.title}.txt", song)
    shutil.copytree(tiny_model, tmp_path / "model")
    before = {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()}
    process = start(["train", "--epochs", "50", "--batch-size", "8"], tmp_path)
    wait_for_output(process, "epoch ", timeout=120)
    os.killpg(process.pid, signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode != 0
    assert partials(tmp_path) == []
    assert {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()} == before


def test_the_next_command_removes_what_a_killed_one_left(cli, tmp_path):
    process = start(["compose", "--notes", "600", "--seed", "3", "--out", "out/x.wav"], tmp_path)
    wait_for(lambda: partials(tmp_path) or process.poll() is not None)
    kill(process)
    [left] = partials(tmp_path)  # SIGKILL: no clean-up ran
    assert str(process.pid) in left.name
    code, out, err = cli("compose", "--notes", "8", "--seed", "1", "--out", "out/y.wav")
    assert code == 0, err
    assert partials(tmp_path) == [] and not (tmp_path / "out/x.wav").exists()
    assert_whole(tmp_path)


# The seeded SIGKILL suite: with the record, live and import kills above (3 each) and
# test_train_kill's 4, more than 20 kills across every command that saves.
KILLS = [101, 202, 303, 404]


@pytest.mark.parametrize("seed", KILLS)
def test_a_compose_killed_at_a_seeded_moment_leaves_nothing_half_written(tmp_path, seed):
    rng = random.Random(seed)
    (tmp_path / "out").mkdir()
    # the old WAV, replaced by --overwrite only once the new one is whole
    soundfile.write(tmp_path / "out/x.wav", [[0.1, 0.1]] * 100, 44100, subtype="PCM_16")
    process = start(["compose", "--notes", str(rng.randint(100, 400)), "--seed", str(seed),
                     "--out", "out/x.wav", "--midi", "out/x.mid", "--tokens", "out/x.txt",
                     "--overwrite"], tmp_path)
    time.sleep(rng.uniform(0.3, 2.5))
    kill(process)
    seen = assert_whole(tmp_path / "out")
    assert tmp_path / "out/x.wav" in seen  # the old one or the new one, whole


def studio_saver(folder: Path, name: str) -> subprocess.Popen:
    """A process saving takes through the studio's record (synth.studio.takes.save) one after
    another, printing each saved song's name."""
    code = f"""
import sys
from pathlib import Path
from synth.studio import takes
notes = [[0.1 * i, 48 + i % 24, 90 - i % 3] for i in range(40)]
take = {{"name": "{name}", "bpm": 150, "seconds": 4.0,
        "messages": sorted(notes + [[t + 0.05, n, 0] for t, n, _ in notes])}}
while True:
    print(takes.save(Path("."), take)["song"], flush=True)
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", code], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.parametrize("seed", KILLS)
def test_two_studio_records_of_one_name_killed_at_seeded_moments_lose_nothing(tmp_path, seed):
    """Two saves of one name at once, again and again (two tabs, or the studio and `synth
    record`), each process killed at a seeded moment: every take either process reported saved
    is there under its own name, whole, with its raw take."""
    rng = random.Random(seed)
    first, second = studio_saver(tmp_path, "tune"), studio_saver(tmp_path, "tune")
    wait_for(lambda: (tmp_path / "dataset").is_dir() and
             len(visible(tmp_path / "dataset")) >= 4, timeout=60)
    time.sleep(rng.uniform(0.0, 1.5))
    reported = []
    for process in (first, second):
        time.sleep(rng.uniform(0.0, 0.3))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
        reported += process.stdout.read().decode().split()
        process.stdout.close()
        process.stderr.close()
    songs = {p.stem for p in visible(tmp_path / "dataset") if p.suffix == ".txt"}
    assert len(reported) == len(set(reported)) >= 2  # no name handed out twice
    assert {Path(r).stem for r in reported} <= songs  # none reported saved is lost
    assert {p.stem for p in visible(tmp_path / "dataset/takes")} >= songs
    assert_whole(tmp_path / "dataset")


@pytest.mark.parametrize("seed", [505, 606])
def test_train_killed_at_a_seeded_moment_leaves_a_whole_model(tmp_path, tiny_model, seed):
    from test_train import small_songs
    from synth.music.songs import write_song

    rng = random.Random(seed)
    for song in small_songs(8):
        write_song(tmp_path / "dataset" / f"{song.title}.txt", song)
    shutil.copytree(tiny_model, tmp_path / "model")
    process = start(["train", "--epochs", "3", "--batch-size", "8"], tmp_path)
    wait_for_output(process, "epoch ", timeout=120)
    time.sleep(rng.uniform(0.0, 6.0))
    kill(process)
    seen = assert_whole(tmp_path)
    assert tmp_path / "model/manifest.json" in seen
