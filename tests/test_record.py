import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import pytest

from conftest import make_midi
from synth.music.events import Event, events_of, events_to_names
from synth.music.midi import file_notes
from synth.music.notes import midi_name
from synth.music.songs import Song, read_song, write_song
from synth.play.inputs import Input

C4, E4, G4, A4 = 60, 64, 67, 69
ROOT = Path(__file__).parent.parent


def replay(path, notes, velocity=90):
    """A replay file from (start, end, pitch) notes in seconds (a beat lasts 1 s at 60 bpm)."""
    return f"replay:{make_midi(path, [notes], tempos=[(0.0, 60.0)], velocity=velocity)}"


def test_record_saves_the_song_and_the_raw_take(cli, tmp_path):
    # 240 bpm: a beat is 0.25 s. C4, E4 (pressed while C4 is held), a 0.5 s pause, C6 (out
    # of range, so its time is silent too: a three-beat rest), G4.
    notes = [(0.0, 0.3, C4), (0.25, 0.5, E4), (1.0, 1.2, 84), (1.25, 1.5, G4)]
    code, out, err = cli("record", "--input", replay(tmp_path / "p.mid", notes, velocity=77),
                         "--bpm", 240, "--count-in", 0, "--name", "First Tune")
    assert code == 0, err
    song = read_song(Path("dataset/first-tune.txt"))
    assert song.events == [Event(13), Event(17), Event(0, 12), Event(20)]
    assert song.bpm == 240 and song.title == "first-tune"
    assert "C6(outside C3-B4, left out)" in out
    assert "C4 E4 -:3 G4" in out
    assert "1 note(s) outside C3-B4" in err and "C6" in err
    # The raw take keeps everything: the out-of-range note, the overlap, the velocities.
    raw, bpm = file_notes(mido.MidiFile("dataset/takes/first-tune.mid"))
    assert bpm == pytest.approx(240)
    assert [n.pitch for n in raw] == [C4, E4, 84, G4]
    assert {n.velocity for n in raw} == {77}
    assert raw[0].end > raw[1].start  # still overlapping
    starts = [n.start * 0.25 for n in raw]  # beats -> seconds at 240 bpm
    assert starts == pytest.approx([s - notes[0][0] + starts[0] for s, _, _ in notes], abs=0.03)


# A tune with a known rhythm, as written: (length in beats, pitches); no pitch is a rest.
D4, F4 = 62, 65
RHYTHM = [(1.5, [C4]), (0.5, [D4]), (0.5, [E4]), (0.5, [F4]), (2, [G4]), (0.5, []),
          (1, [C4, E4, G4]), (1.5, []), (1.5, [A4]), (0.5, [G4]), (0.25, [F4]), (0.25, [E4]),
          (0.5, [D4]), (0.75, [C4]), (0.25, [D4]), (2, [C4])]
RHYTHM_EVENTS = [Event(max(p) - 47 if p else 0, round(beats * 4)) for beats, p in RHYTHM]


def rhythm_file(path, bpm, early=0.0):
    """The tune as a MIDI file at `bpm`; each key let go `early` beats before its time ends."""
    notes, now = [], 0.0
    for beats, pitches in RHYTHM:
        notes += [(now, now + beats - early, pitch) for pitch in pitches]
        now += beats
    return make_midi(path, [notes], tempos=[(0.0, bpm)])


@pytest.mark.parametrize("early", [0.0, 0.08])
def test_a_replayed_rhythm_is_recorded_and_imported_as_written(cli, tmp_path, early):
    path = rhythm_file(tmp_path / "rhythm.mid", 200, early)
    code, out, err = cli("record", "--input", f"replay:{path}", "--bpm", 200, "--count-in", 0,
                         "--name", "rhythm")
    assert code == 0, err
    song = read_song(Path("dataset/rhythm.txt"))
    assert song.events == RHYTHM_EVENTS and song.bpm == 200
    assert "Take ended by end of the replayed file: 14 notes, 2 rests" in out
    shown = out.split("play!\n", 1)[1].splitlines()[0]
    assert shown.split() == events_to_names(RHYTHM_EVENTS).split()  # as played, then saved
    # `synth import` of the same file gives the same events
    code, out, err = cli("import", path, "--dataset", "imported")
    assert code == 0, err
    assert read_song(Path("imported/rhythm.txt")).events == RHYTHM_EVENTS
    lines = out.splitlines()
    header = re.split("[│┃]", next(line for line in lines if "quantised" in line))
    row = re.split("[│┃]", next(line for line in lines if "rhythm.mid" in line))
    counts = {h.strip(): r.strip() for h, r in zip(header, row)}
    assert (counts["notes"], counts["dropped"], counts["rests"], counts["quantised"],
            counts["clamped"]) == ("14", "2", "2", "0" if not early else "3", "0")
    # the chord's lower notes are dropped; let go early, the three notes before a silence
    # (and the end) are lengthened to the grid


def test_notes_too_fast_for_the_grid_are_kept_where_there_is_room_and_named_where_not(
        cli, tmp_path):
    # The take: seven eighth notes at 480 bpm, recorded at the default 150 bpm (once
    # saved as C4:0.25 E4:0.25 G4:0.5 B4:0.25, D4, F4 and A4 gone without a word).
    scale = [C4, D4, E4, F4, G4, A4, 71]
    eighths = [(i / 2, (i + 1) / 2, p) for i, p in enumerate(scale)]
    path = make_midi(tmp_path / "fast.mid", [eighths], tempos=[(0.0, 480.0)])
    code, out, err = cli("record", "--input", f"replay:{path}", "--count-in", 0)
    assert code == 0, err
    kept = [e.cls + 47 for e in read_song(Path("dataset/take.txt")).events if not e.is_rest]
    [warning] = [line for line in err.splitlines() if "faster than a quarter beat" in line]
    named = re.search(r"(\d) notes faster than a quarter beat at 150 bpm were merged: "
                      r"([A-G#0-9 ]+); record at a slower --bpm to keep them", warning)
    assert named, warning
    merged = [midi_name(p) for p in scale if p not in kept]
    assert named[2].split() == merged and int(named[1]) == len(merged)
    assert len(kept) >= 5  # kept where the grid has room: the most its points hold
    assert "too fast, merged" in out  # flagged on screen as it happened
    raw, _ = file_notes(mido.MidiFile("dataset/takes/take.mid"))
    assert [n.pitch for n in raw] == scale  # the raw take keeps them all


def test_a_song_rendered_to_midi_and_imported_back_is_unchanged(cli):
    events = [Event(13, 6), Event(15, 2), Event(0, 2), Event(17, 1), Event(17, 3), Event(0, 40),
              Event(24, 32), Event(1, 1), Event(0, 1), Event(12, 10)]
    written = events[:5] + [Event(0, 32), Event(0, 8)] + events[6:]  # rests of at most 8 beats
    write_song(Path("tune.txt"), Song(events=written, title="tune", bpm=97))
    code, out, err = cli("render", "tune.txt", "--out", "tune.wav", "--midi", "tune.mid")
    assert code == 0, err
    code, out, err = cli("import", "tune.mid", "--dataset", "back")
    assert code == 0, err
    again = read_song(next(Path("back").glob("*.txt")))
    assert again.events == written and again.bpm == 97


def test_a_name_in_use_gets_a_number(cli, tmp_path):
    source = replay(tmp_path / "p.mid", [(0, 0.2, C4)])
    Path("dataset").mkdir()
    Path("dataset/tune.txt").write_text("1 2 3\n")
    assert cli("record", "--input", source, "--count-in", 0, "--name", "tune")[0] == 0
    assert cli("record", "--input", source, "--count-in", 0, "--name", "tune")[0] == 0
    assert Path("dataset/tune.txt").read_text() == "1 2 3\n"
    # 150 bpm: held 0.2 s, half a beat
    assert read_song(Path("dataset/tune-2.txt")).events == [Event(13, 2)]
    assert read_song(Path("dataset/tune-3.txt")).events == [Event(13, 2)]
    assert sorted(p.name for p in Path("dataset/takes").iterdir()) == ["tune-2.mid", "tune-3.mid"]


def test_seconds_ends_the_take_during_a_pause(cli, tmp_path):
    notes = [(0.0, 0.2, C4), (0.25, 0.45, E4), (2.5, 2.7, G4)]
    code, out, err = cli("record", "--input", replay(tmp_path / "p.mid", notes), "--bpm", 240,
                         "--count-in", 0, "--seconds", 1.2)
    assert code == 0, err
    # C4 lasts to E4 (a lift of 0.2 beat is no rest); E4 as long as it was held; no
    # trailing rest for the silence before the end
    assert read_song(Path("dataset/take.txt")).events == [Event(13, 4), Event(17, 3)]
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
    # the replay plays from the count-in's first beat: its note comes after three beats
    code, out, _ = cli("record", "--input", replay(tmp_path / "p.mid", [(0.5, 0.6, C4)]),
                       "--count-in", 3, "--bpm", 400)
    assert code == 0 and "3 2 1 play!" in out


class CountedInPlayer(Input):
    """A fake keyboard that takes `opening` seconds to open, and a player who plays along
    with the count-in as they hear it: (beat, beats held, pitch) notes, beats counted from
    the count-in's first beat."""

    def __init__(self, notes, bpm, opening):
        super().__init__()
        self.notes, self.step, self.opening = notes, 60.0 / bpm, opening
        self.first_beat = None

    def start(self):
        time.sleep(self.opening)  # a port slow to open: the count-in must wait for it

    def hear(self, beat):
        if self.first_beat is None:
            self.first_beat = time.monotonic()
            self._spawn(self._play)

    def _play(self):
        timed = [(b, mido.Message("note_on", note=p, velocity=80)) for b, _, p in self.notes]
        timed += [(b + held, mido.Message("note_off", note=p)) for b, held, p in self.notes]
        for beat, msg in sorted(timed, key=lambda m: m[0]):
            due = self.first_beat + beat * self.step
            if self._stop.wait(max(due - time.monotonic(), 0.0)):
                return
            self.put(msg, when=due)
        self.put(None, reason="Enter")


def test_a_pickup_played_during_the_count_in_is_kept_and_beat_1_follows_the_count_in():
    from synth.play.record import record_take

    # 150 bpm, 4 beats counted in; E4 and G4 on the count-in's third and fourth beats (a
    # two-beat pickup), C4 on beat 1 for a beat, then E4 for two
    notes = [(2, 0.9, E4), (3, 0.9, G4), (4, 0.9, C4), (5, 1.8, E4)]
    player = CountedInPlayer(notes, bpm=150, opening=0.3)
    said = []
    take = record_take(player, 150, None, count_in=4,
                       on_beat=lambda beat: said.append(beat) or player.hear(beat),
                       on_start=lambda: said.append("play!"))
    assert said == [4, 3, 2, 1, "play!"]
    assert take.downbeat == pytest.approx(1.6)  # four beats at 0.4 s
    # C4 was played on beat 1: it falls there, not 0.3 s (the port's opening) off it
    [c4_at] = [t for t, m in take.messages if m.type == "note_on" and m.note == C4]
    assert c4_at == pytest.approx(take.downbeat, abs=0.03)
    assert take.events()[0] == [Event(17, 4), Event(20, 4), Event(13, 4), Event(17, 7)]
    assert take.pickup() == 2


def test_record_says_where_the_pickup_falls_and_the_raw_take_keeps_its_timing(cli, tmp_path):
    # 240 bpm, a beat 0.25 s, 2 beats counted in: the replay, playing from the count-in's
    # first beat, gives a one-beat pickup G4, then C4 on beat 1, then E4 held 1.8 beats
    notes = [(0.25, 0.45, G4), (0.5, 0.7, C4), (0.75, 1.2, E4)]
    code, out, err = cli("record", "--input", replay(tmp_path / "p.mid", notes), "--bpm", 240,
                         "--count-in", 2)
    assert code == 0, err
    assert read_song(Path("dataset/take.txt")).events == [Event(20, 4), Event(13, 4),
                                                          Event(17, 7)]
    assert "The song starts 1 beat before beat 1" in out
    raw, _ = file_notes(mido.MidiFile("dataset/takes/take.mid"))
    assert [n.start for n in raw] == pytest.approx([1, 2, 3], abs=0.15)  # beats of the take


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
    events = read_song(tmp_path / "dataset/take.txt").events
    assert 3 <= len(events) < 60 and events[:3] == events_of([13, 14, 15])
    assert all(e.quarters == 4 for e in events[:-1])  # each note lasts to the next
    raw, _ = file_notes(mido.MidiFile(tmp_path / "dataset/takes/take.mid"))
    assert len(raw) == len(events)
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
        for key in "zq2u":  # C3, C4, C#4, B4, one beat apart
            os.write(main, key.encode())
            time.sleep(0.5)
        time.sleep(0.6)  # a beat of silence after the last: no trailing rest
        os.write(main, b"\n")
        out, err = process.communicate(timeout=20)
    finally:
        os.close(main)
    assert process.returncode == 0, err
    assert read_song(tmp_path / "dataset/take.txt").events == events_of([1, 13, 14, 24])
    raw, _ = file_notes(mido.MidiFile(tmp_path / "dataset/takes/take.mid"))
    # A terminal gives no key-up: each strike lasts a beat (0.5 s) or until the next key.
    assert [round(n.end - n.start, 1) for n in raw] == [1.0, 1.0, 1.0, 1.0]


# --- a take whose process died: its journal, and the recovery ------------------------------


def killed_take(dataset, messages, seconds, name="take", bpm=240.0):
    """A journal as a `synth record` killed `seconds` into its take leaves it."""
    from synth.play.journal import TakeJournal

    log = TakeJournal(dataset / "takes", name, bpm, "replay of p.mid")
    for t, msg in messages:
        log.add(t, msg)
    log.tick(seconds)
    log.close()
    return log.path


def played(notes):
    """(start, end, pitch) in seconds -> messages at their times, as a take holds them."""
    timed = [(s, mido.Message("note_on", note=p, velocity=80)) for s, _, p in notes]
    timed += [(e, mido.Message("note_off", note=p, velocity=0)) for _, e, p in notes]
    return sorted(timed, key=lambda m: m[0])


def test_a_recovered_take_is_saved_exactly_as_the_finished_take(tmp_path):
    from datetime import date

    from synth.play.take import Take
    from synth.play.record import recover_takes, save_take

    messages = played([(0.0, 0.2, C4), (0.25, 0.5, E4), (1.0, 1.6, 84), (1.5, 2.4, G4)])
    save_take(Take(bpm=240.0, messages=messages, seconds=2.6), tmp_path / "finished", "take",
              "replay of p.mid", day=date.today())
    journal_path = killed_take(tmp_path / "killed", messages, 2.6)
    [recovered] = recover_takes(tmp_path / "killed")
    assert recovered.saved.song_path == tmp_path / "killed/take.txt"
    assert recovered.journal == journal_path and not journal_path.exists()
    for name in ("take.txt", "takes/take.mid"):
        assert (tmp_path / "killed" / name).read_bytes() == \
            (tmp_path / "finished" / name).read_bytes()
    assert recover_takes(tmp_path / "killed") == []  # once


def test_the_next_record_saves_the_unfinished_take_first(cli, tmp_path):
    killed_take(Path("dataset"), played([(0.0, 0.2, E4), (0.25, 0.45, G4)]), 0.6)
    code, out, err = cli("record", "--input", replay(tmp_path / "p.mid", [(0, 0.2, C4)]),
                         "--count-in", 0)
    assert code == 0, err
    [line] = [line for line in out.splitlines() if line.startswith("Recovered")]
    assert "(2 notes, 0.6 s): saved dataset/take.txt and dataset/takes/take.mid" in line
    assert read_song(Path("dataset/take.txt")).events[0] == Event(17)  # the recovered take
    assert read_song(Path("dataset/take-2.txt")).events == [Event(13, 2)]  # the new one
    assert not list(Path("dataset").rglob(".*"))


def test_recover_does_only_the_recovery(cli, tmp_path):
    code, out, _ = cli("recover")
    assert code == 0 and "Nothing to recover in dataset/takes, out." in out
    killed_take(Path("dataset"), played([(0.0, 0.2, C4)]), 0.3, name="Night Song")
    killed_take(Path("dataset"), [], 0.3)  # killed before a note: nothing to save
    code, out, _ = cli("recover")
    assert code == 0
    assert out.count("Recovered") == 1 and "saved dataset/night-song.txt" in out
    assert sorted(p.name for p in Path("dataset").rglob("*")) == \
        ["night-song.mid", "night-song.txt", "takes"]


def no_space_for(monkeypatch, suffix):
    """Writing a file ending in `suffix` fails as on a full disk."""
    import errno

    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.endswith(suffix):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)


def test_a_full_disk_keeps_the_take_in_its_journal(cli, tmp_path, monkeypatch):
    Path("dataset").mkdir()
    Path("dataset/old.txt").write_text("1 2 3\n")
    source = replay(tmp_path / "p.mid", [(0, 0.2, C4), (0.25, 0.45, E4)])
    with monkeypatch.context() as full:
        no_space_for(full, ".part.txt")
        code, out, err = cli("record", "--input", source, "--count-in", 0)
    assert code == 2
    [line] = err.strip().splitlines()
    assert "dataset/take.txt: cannot write: No space left on device" in line
    assert "the take is safe in dataset/takes/.take." in line and "synth recover" in line
    assert Path("dataset/old.txt").read_text() == "1 2 3\n"  # earlier files intact
    # the take's MIDI, claimed before the disk filled, is let go again: no half of a save
    assert not Path("dataset/take.txt").exists() and not Path("dataset/takes/take.mid").exists()
    [journal_path] = Path("dataset/takes").glob(".*.journal")
    # room again: the save is made under the name it had picked
    code, out, err = cli("recover")
    assert code == 0, err
    assert "saved dataset/take.txt and dataset/takes/take.mid" in out
    assert read_song(Path("dataset/take.txt")).events == [Event(13, 2), Event(17, 2)]
    assert [n.pitch for n in file_notes(mido.MidiFile("dataset/takes/take.mid"))[0]] == [C4, E4]
    assert not journal_path.exists()


def test_a_full_disk_during_recovery_keeps_the_journal(cli, monkeypatch):
    journal_path = killed_take(Path("dataset"), played([(0.0, 0.2, C4)]), 0.3)
    with monkeypatch.context() as full:
        no_space_for(full, ".part.txt")
        code, out, err = cli("recover")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "No space left on device" in err and "the take is safe in" in err
    assert journal_path.exists()
    assert cli("recover")[0] == 0 and Path("dataset/take.txt").exists()


def test_a_journal_that_filled_the_disk_says_how_much_it_kept(tmp_path, monkeypatch):
    from synth.errors import SynthError
    from synth.play.take import Take
    from synth.play.journal import TakeJournal
    from synth.play.record import save_take

    log = TakeJournal(tmp_path / "dataset/takes", "take", 240.0, "test")
    log.failed = "No space left on device"  # as after a write that failed mid-take
    no_space_for(monkeypatch, ".part.txt")
    take = Take(bpm=240.0, messages=played([(0.0, 0.2, C4)]), seconds=0.3)
    with pytest.raises(SynthError, match="up to where that failed too .No space left"):
        save_take(take, tmp_path / "dataset", "take", "test", log=log)
    assert log.path.exists()


def test_two_saves_of_one_name_at_once_keep_both(tmp_path, monkeypatch):
    """The studio's record and `synth record` saving `tune` at the same moment (threads that
    start together, again and again, each slow to write, so both find the same name free):
    every take is kept, each under a name of its own."""
    import threading

    real_save = mido.MidiFile.save

    def slow_save(self, *args, **kwargs):
        time.sleep(0.05)  # both saves now write while the name they found free is still free
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(mido.MidiFile, "save", slow_save)

    from synth.play.record import save_take
    from synth.play.take import Take
    from synth.studio import takes

    def take_of(pitch):
        return [(0.0, mido.Message("note_on", note=pitch, velocity=90)),
                (0.3, mido.Message("note_off", note=pitch, velocity=0))]

    saved = []
    for round_ in range(5):
        start = threading.Barrier(2)

        def studio():
            start.wait()
            page = {"name": "tune", "bpm": 150, "messages": [[0.0, C4, 90], [0.3, C4, 0]]}
            saved.append(takes.save(tmp_path, page)["song"])

        def record():
            start.wait()
            done = save_take(Take(bpm=150, messages=take_of(E4), seconds=0.5),
                             tmp_path / "dataset", "tune", "a keyboard")
            saved.append(done.song_path.relative_to(tmp_path).as_posix())

        threads = [threading.Thread(target=studio), threading.Thread(target=record)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(saved) == len(set(saved)) == 10
    songs = [read_song(tmp_path / path) for path in saved]
    assert sorted(s.events[0].cls for s in songs) == [13] * 5 + [17] * 5  # C4s and E4s
    for path in saved:
        raw, _ = file_notes(mido.MidiFile(tmp_path / "dataset/takes" / f"{Path(path).stem}.mid"))
        assert [n.pitch for n in raw] == [C4 if read_song(tmp_path / path).events[0].cls == 13
                                          else E4]


@pytest.mark.parametrize("whose", ["its own", "another take's"])
def test_a_save_killed_half_way_is_finished_under_its_name_never_over_another(cli, whose):
    """Killed after the raw take had its name and before the song did: `recover` finishes the
    save under that name; if the MIDI there is not this take's, it never touches it."""
    from synth.music.midi import take_to_midi
    from synth.play.journal import TakeJournal, read_take

    path = killed_take(Path("dataset"), played([(0.0, 0.2, C4), (0.25, 0.45, E4)]), 0.6)
    log = TakeJournal.reopen(path)
    log.saving("take")
    log.close()
    left = read_take(path)
    messages = left.messages if whose == "its own" else played([(0.0, 0.2, G4)])
    take_to_midi(messages, left.bpm, name="take").save("dataset/takes/take.mid")
    before = Path("dataset/takes/take.mid").read_bytes()
    code, out, err = cli("recover")
    assert code == 0, err
    stem = "take" if whose == "its own" else "take-2"
    assert f"saved dataset/{stem}.txt and dataset/takes/{stem}.mid" in out
    assert [e.cls for e in read_song(Path(f"dataset/{stem}.txt")).events] == [13, 17]
    assert Path("dataset/takes/take.mid").read_bytes() == before
    assert not path.exists()
