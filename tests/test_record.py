import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import pytest

from conftest import make_midi
from synth.midi import file_notes
from synth.songs import read_song

C4, E4, G4, A4 = 60, 64, 67, 69
ROOT = Path(__file__).parent.parent


def replay(path, notes, velocity=90):
    """A replay file from (start, end, pitch) notes in seconds (a beat lasts 1 s at 60 bpm)."""
    return f"replay:{make_midi(path, [notes], tempos=[(0.0, 60.0)], velocity=velocity)}"


def test_record_saves_the_song_and_the_raw_take(cli, tmp_path):
    # 240 bpm: a step is 0.25 s. C4, E4 (pressed while C4 is held), a 0.5 s pause, C6 (out
    # of range, so its step is silent too: three rests), G4.
    notes = [(0.0, 0.3, C4), (0.25, 0.5, E4), (1.0, 1.2, 84), (1.25, 1.5, G4)]
    code, out, err = cli("record", "--input", replay(tmp_path / "p.mid", notes, velocity=77),
                         "--bpm", 240, "--count-in", 0, "--name", "First Tune")
    assert code == 0, err
    song = read_song(Path("dataset/first-tune.txt"))
    assert song.tokens == [13, 17, 0, 0, 0, 20]
    assert song.bpm == 240 and song.title == "first-tune"
    assert "C4 E4 C6" in out and "left out" in out
    assert "1 note(s) outside C3-B4" in err and "C6" in err
    # The raw take keeps everything: the out-of-range note, the overlap, the velocities.
    raw, bpm = file_notes(mido.MidiFile("dataset/takes/first-tune.mid"))
    assert bpm == pytest.approx(240)
    assert [n.pitch for n in raw] == [C4, E4, 84, G4]
    assert {n.velocity for n in raw} == {77}
    assert raw[0].end > raw[1].start  # still overlapping
    starts = [n.start * 0.25 for n in raw]  # beats -> seconds at 240 bpm
    assert starts == pytest.approx([s - notes[0][0] + starts[0] for s, _, _ in notes], abs=0.03)


def test_a_name_in_use_gets_a_number(cli, tmp_path):
    source = replay(tmp_path / "p.mid", [(0, 0.2, C4)])
    Path("dataset").mkdir()
    Path("dataset/tune.txt").write_text("1 2 3\n")
    assert cli("record", "--input", source, "--count-in", 0, "--name", "tune")[0] == 0
    assert cli("record", "--input", source, "--count-in", 0, "--name", "tune")[0] == 0
    assert Path("dataset/tune.txt").read_text() == "1 2 3\n"
    assert read_song(Path("dataset/tune-2.txt")).tokens == [13]
    assert read_song(Path("dataset/tune-3.txt")).tokens == [13]
    assert sorted(p.name for p in Path("dataset/takes").iterdir()) == ["tune-2.mid", "tune-3.mid"]


def test_seconds_ends_the_take_during_a_pause(cli, tmp_path):
    notes = [(0.0, 0.2, C4), (0.25, 0.45, E4), (2.5, 2.7, G4)]
    code, out, err = cli("record", "--input", replay(tmp_path / "p.mid", notes), "--bpm", 240,
                         "--count-in", 0, "--seconds", 1.2)
    assert code == 0, err
    assert read_song(Path("dataset/take.txt")).tokens == [13, 17]  # no trailing rests
    assert "ended by 1.2 seconds" in out
    raw, _ = file_notes(mido.MidiFile("dataset/takes/take.mid"))
    assert [n.pitch for n in raw] == [C4, E4]


def test_a_take_with_no_notes_saves_nothing(cli, tmp_path):
    code, out, _ = cli("record", "--input", replay(tmp_path / "p.mid", [(1.0, 1.2, C4)]),
                       "--count-in", 0, "--seconds", 0.2)
    assert code == 0 and "nothing saved" in out
    assert not Path("dataset").exists() or not any(Path("dataset").rglob("*.*"))


def test_only_notes_out_of_range_keeps_the_raw_take(cli, tmp_path):
    code, out, _ = cli("record", "--input", replay(tmp_path / "p.mid", [(0, 0.2, 30)]),
                       "--count-in", 0)
    assert code == 0
    assert Path("dataset/takes/take.mid").exists() and not Path("dataset/take.txt").exists()


def test_count_in_counts_down(cli, tmp_path):
    code, out, _ = cli("record", "--input", replay(tmp_path / "p.mid", [(0, 0.1, C4)]),
                       "--count-in", 3, "--bpm", 400)
    assert code == 0 and "3 2 1 play!" in out


@pytest.mark.parametrize("args,message", [
    (["--bpm", "0"], "--bpm"),
    (["--count-in", "-1"], "--count-in"),
    (["--seconds", "0"], "--seconds"),
    (["--speed", "0"], "--speed"),
    (["--input", "replay:missing.mid"], "missing.mid: no such file"),
    (["--input", "no-such-keyboard"], "no MIDI input"),
])
def test_bad_flags_are_one_line_errors(cli, args, message):
    base = ["--input", "replay:missing.mid"] if "--input" not in args else []
    code, out, err = cli("record", *base, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not Path("dataset").exists()


def synth_process(args, cwd, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "synth.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def wait_for_output(process, text, timeout=20.0):
    """Read the process's stdout until `text` appears."""
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        assert time.monotonic() < deadline, f"never printed {text!r}: {seen!r}"
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            assert chunk, f"ended before printing {text!r}: {seen!r}"
            seen += chunk
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_ends_the_take_and_saves_it(tmp_path, sig):
    notes = [(0.2 * i, 0.2 * i + 0.15, C4 + i % 12) for i in range(60)]  # 12 s of playing
    source = replay(tmp_path / "p.mid", notes)
    process = synth_process(["record", "--input", source, "--count-in", "0", "--bpm", "300"],
                            tmp_path, stdin=subprocess.DEVNULL)
    wait_for_output(process, "D4")  # the third note has been played and shown
    process.send_signal(sig)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert b"Take ended by Ctrl-C" in out
    tokens = read_song(tmp_path / "dataset/take.txt").tokens
    assert 3 <= len(tokens) < 60 and tokens[:3] == [13, 14, 15]
    raw, _ = file_notes(mido.MidiFile(tmp_path / "dataset/takes/take.mid"))
    assert len(raw) == len(tokens)
    assert not list((tmp_path / "dataset").rglob(".*tmp*"))  # no half-written files


@pytest.mark.slow
def test_the_computer_keyboard_plays_notes_and_enter_ends_the_take(tmp_path):
    main, terminal = pty.openpty()
    process = synth_process(["record", "--input", "keys", "--count-in", "0", "--bpm", "120"],
                            tmp_path, stdin=terminal)
    os.close(terminal)
    try:
        shown = wait_for_output(process, "play!")
        assert b"z=C3" in shown
        for key in "zq2u":  # C3, C4, C#4, B4, one step apart
            os.write(main, key.encode())
            time.sleep(0.5)
        time.sleep(0.6)  # one more step of silence: no trailing rest
        os.write(main, b"\n")
        out, err = process.communicate(timeout=20)
    finally:
        os.close(main)
    assert process.returncode == 0, err
    assert read_song(tmp_path / "dataset/take.txt").tokens == [1, 13, 14, 24]
    raw, _ = file_notes(mido.MidiFile(tmp_path / "dataset/takes/take.mid"))
    # A terminal gives no key-up: each strike lasts a step (0.5 s) or until the next key.
    assert [round(n.end - n.start, 1) for n in raw] == [1.0, 1.0, 1.0, 1.0]
