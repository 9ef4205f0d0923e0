import time

import mido
import pytest

from conftest import make_midi
from synth.play import devices, inputs
from synth.errors import SynthError
from synth.play.inputs import KEY_PITCHES, ReplayInput, keyboard_picture, open_input
from synth.music.midi import DRUM_CHANNEL
from synth.music.notes import HIGHEST_MIDI, LOWEST_MIDI

C4, E4 = 60, 64


def seconds(notes):
    """make_midi notes given in seconds: at 60 bpm a beat lasts one second."""
    return {"tempos": [(0.0, 60.0)], "tracks": [notes]}


def drain(source, limit=5.0):
    events = []
    source.start()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        event = source.get(timeout=0.1)
        if event is None:
            continue
        events.append(event)
        if event.is_stop:
            break
    source.close()
    return events


def test_replay_plays_the_file_in_real_time_then_stops(tmp_path):
    path = make_midi(tmp_path / "p.mid", **seconds([(0.0, 0.1, C4), (0.3, 0.4, E4)]))
    source = ReplayInput(path)
    began = time.monotonic()
    events = drain(source)
    presses = [e for e in events if inputs.is_press(e.message)]
    assert [e.message.note for e in presses] == [C4, E4]
    assert presses[1].time - presses[0].time == pytest.approx(0.3, abs=0.02)
    assert presses[0].time - began < 0.1
    assert events[-1].is_stop and events[-1].reason == "end of the replayed file"
    assert events[-1].time - began == pytest.approx(0.4, abs=0.1)


def test_replay_speed_plays_faster(tmp_path):
    path = make_midi(tmp_path / "p.mid", **seconds([(0.0, 0.1, C4), (0.8, 0.9, E4)]))
    presses = [e for e in drain(ReplayInput(path, speed=4)) if inputs.is_press(e.message)]
    assert presses[1].time - presses[0].time == pytest.approx(0.2, abs=0.02)


def test_replay_leaves_drums_out(tmp_path):
    midi = mido.MidiFile()
    track = mido.MidiTrack([mido.Message("note_on", note=36, channel=DRUM_CHANNEL, velocity=99),
                            mido.Message("note_on", note=C4, velocity=70, time=10),
                            mido.Message("note_off", note=C4, time=10)])
    midi.tracks.append(track)
    midi.save(tmp_path / "d.mid")
    events = drain(ReplayInput(tmp_path / "d.mid"))
    assert [e.message.note for e in events if not e.is_stop] == [C4, C4]


@pytest.mark.parametrize("speed", [0, -1, 1000])
def test_replay_speed_out_of_range(tmp_path, speed):
    path = make_midi(tmp_path / "p.mid", [[(0, 1, C4)]])
    with pytest.raises(SynthError, match="--speed"):
        ReplayInput(path, speed=speed)


def test_replay_of_nothing_is_refused(tmp_path):
    with pytest.raises(SynthError, match="no such file"):
        open_input(f"replay:{tmp_path / 'missing.mid'}")
    (tmp_path / "bad.mid").write_bytes(b"not midi at all")
    with pytest.raises(SynthError, match="not a readable MIDI file"):
        open_input(f"replay:{tmp_path / 'bad.mid'}")
    empty = make_midi(tmp_path / "empty.mid", [[]])
    with pytest.raises(SynthError, match="no notes to replay"):
        open_input(f"replay:{empty}")


def test_no_midi_port_names_the_other_inputs(monkeypatch):
    monkeypatch.setattr(devices, "midi_input_names", lambda problems=None: [])
    with pytest.raises(SynthError) as caught:
        open_input(None)
    assert "no MIDI input found" in str(caught.value)
    assert "--input keys" in str(caught.value) and "replay:FILE.mid" in str(caught.value)


def test_ports_are_found_by_part_of_their_name(monkeypatch):
    names = ["Digital Piano MIDI 1", "Launchkey Mini MIDI 1"]
    monkeypatch.setattr(devices, "midi_input_names", lambda problems=None: names)
    assert open_input("launchkey").name == "Launchkey Mini MIDI 1"
    assert open_input(None).name == "Digital Piano MIDI 1"  # the first port by default
    with pytest.raises(SynthError, match="matches several"):
        open_input("MIDI 1")
    with pytest.raises(SynthError, match="found: 'Digital Piano MIDI 1', 'Launchkey"):
        open_input("Nord")


def test_speed_is_only_for_replay():
    with pytest.raises(SynthError, match="--speed only applies"):
        open_input("keys", speed=2)


def test_keys_need_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    with pytest.raises(SynthError, match="needs a terminal"):
        open_input("keys")


def test_two_rows_of_keys_are_two_octaves():
    assert sorted(KEY_PITCHES.values()) == list(range(LOWEST_MIDI, HIGHEST_MIDI + 1))
    assert KEY_PITCHES["z"] == 48 and KEY_PITCHES["q"] == 60 and KEY_PITCHES["u"] == 71
    picture = keyboard_picture()
    assert "z=C3" in picture and "q=C4" in picture and "2=C#4" in picture


def test_the_shipped_example_phrases_replay():
    from pathlib import Path

    source = ReplayInput(Path(__file__).parent.parent / "examples" / "phrases.mid")
    presses = [m for _, m in source.timeline if inputs.is_press(m)]
    assert len(presses) == 36 and all(LOWEST_MIDI <= m.note <= HIGHEST_MIDI for m in presses)


@pytest.mark.parametrize("data,keys,rest", [
    (b"zq\n", ["z", "q", "\n"], b""),
    (b"\x1b[A\x1b[B\x1b[C\x1b[Dz", ["z"], b""),  # arrows: not G3, E3, D#3
    (b"\x1bOP\x1b[15~\x1b[1;5Cq", ["q"], b""),  # F1, F5, Ctrl+Right
    (b"\x1bxz", ["z"], b""),  # Alt+x
    (b"\x1b\x1b[Az", ["z"], b""),  # Escape, then an arrow
    (b"z\x1b[1", ["z"], b"\x1b[1"),  # cut off: the next read completes it
    (b"q\x1b", ["q"], b"\x1b"),
    ("é".encode() + b"Z", ["z"], b""),
])
def test_escape_sequences_are_read_whole_and_left_out(data, keys, rest):
    assert inputs.key_presses(data) == (keys, rest)


def test_the_computer_keyboard_ignores_arrows_and_function_keys_through_a_terminal():
    import os
    import pty

    main, terminal = pty.openpty()
    source = inputs.KeysInput(hold=5.0, terminal=terminal)
    try:
        source.start()
        # down (cut in two by the terminal), F5, z, right, F4, q, left, a lone Escape; Enter.
        # Read a byte at a time, the arrows' last bytes were keys: b=G3, c=E3, d=D#3, s=C#3.
        for chunk in (b"\x1b[", b"B", b"\x1b[15~z", b"\x1b[C\x1bOS", b"q", b"\x1b[D", b"\x1b"):
            os.write(main, chunk)
            time.sleep(0.02)
        time.sleep(0.2)
        os.write(main, b"\n")
        events = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (events and events[-1].is_stop):
            event = source.get(timeout=0.1)
            if event is not None:
                events.append(event)
    finally:
        source.close()
        os.close(main)
        os.close(terminal)
    presses = [e.message.note for e in events if inputs.is_press(e.message)]
    assert presses == [KEY_PITCHES["z"], KEY_PITCHES["q"]]
    assert events[-1].reason == "Enter"
