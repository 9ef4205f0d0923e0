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
import signal
import subprocess
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
