import signal
import subprocess
from pathlib import Path

import mido
import pytest

from synth.play.session_midi import SessionMidi, TempoMap
from synth.music.midi import TICKS_PER_BEAT, import_midi
from synth.play.outputs import Strike
from test_live import channel_notes
from test_record import replay, synth_process, wait_for_output


def test_each_phrase_starts_on_a_whole_beat_at_its_own_tempo():
    # 120 bpm from 1.0 s, then 90 bpm from 7.3 s (12.6 beats of 120 later), then 150 from
    # 7.9 s (under a beat of 90 later).
    tempo = TempoMap.of([(1.0, 120.0), (7.3, 90.0), (7.9, 150.0)])
    assert tempo.tick(1.0) == 0 and tempo.tick(1.5) == TICKS_PER_BEAT
    assert tempo.tick(6.5) == 11 * TICKS_PER_BEAT
    assert tempo.tick(7.3) == 12 * TICKS_PER_BEAT  # the twelfth beat is stretched to 0.8 s
    assert tempo.tick(7.9) == 13 * TICKS_PER_BEAT  # 90 bpm lasted 0.6 s: one beat of it
    assert tempo.tick(7.9 + 0.4) == 14 * TICKS_PER_BEAT
    # Read back by mido, every time is where it was.
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    now = 0
    for _, tick, us in tempo.points:
        track.append(mido.MetaMessage("set_tempo", tempo=us, time=tick - now))
        now = tick
    for second in (1.0, 2.2, 6.9, 7.3, 7.5, 7.9, 9.0):
        assert _seconds(midi, tempo.tick(second)) == pytest.approx(second - 1.0, abs=0.002)


def _seconds(midi, tick):
    """Seconds at `tick` through the file's tempo changes."""
    seconds, at, us = 0.0, 0, 500000
    for msg in mido.merge_tracks(midi.tracks):
        if at + msg.time > tick:
            break
        seconds += mido.tick2second(msg.time, TICKS_PER_BEAT, us)
        at += msg.time
        if msg.type == "set_tempo":
            us = msg.tempo
    return seconds + mido.tick2second(tick - at, TICKS_PER_BEAT, us)


def test_the_duet_file_holds_both_parts_and_keys_still_held(tmp_path):
    duet = SessionMidi(tmp_path / "d.mid", 120.0)
    for t, kind, note in [(10.0, "note_on", 60), (10.4, "note_off", 60), (10.5, "note_on", 64),
                          (11.0, "note_off", 64), (14.0, "note_on", 67)]:
        duet.key(t, mido.Message(kind, note=note, velocity=70 if kind == "note_on" else 0))
    duet.phrase(10.0, 120.0)
    duet.answer(12.0, [Strike(0.0, 0.5, 62, 70), Strike(0.5, 1.5, 65, 70)], cut=12.75)
    duet.save(until=14.5)
    midi = mido.MidiFile(tmp_path / "d.mid")
    assert [t.name for t in midi.tracks] == ["player", "synth"]
    # Times from the phrase's first beat (10 s); the key still held is let go at the end.
    assert [(p, round(s, 3), round(e, 3)) for s, e, p in channel_notes(midi, 0)] == [
        (60, 0.0, 0.4), (64, 0.5, 1.0), (67, 4.0, 4.5)]
    # The answer's second note was cut at 12.75 s.
    assert [(p, round(s, 3), round(e, 3)) for s, e, p in channel_notes(midi, 1)] == [
        (62, 2.0, 2.5), (65, 2.5, 2.75)]
    song, _ = import_midi(tmp_path / "d.mid")
    assert [e.cls for e in song.events if not e.is_rest] == [13, 17, 15, 18, 20]


@pytest.mark.slow
def test_the_session_midi_survives_a_kill(tmp_path, tiny_model):
    notes = [(t, t + 0.2, 60 + 2 * i) for i, t in enumerate((0.0, 0.25, 0.5, 0.75))]
    notes += [(t + 20, e + 20, p) for t, e, p in notes]  # a second phrase, long after
    process = synth_process(["live", "--input", replay(tmp_path / "p.mid", notes), "--model",
                             str(tiny_model), "--output", "wav:s.wav", "--midi", "s.mid",
                             "--log", "log.jsonl", "--bpm", "240", "--respond", "2"],
                            tmp_path, stdin=subprocess.DEVNULL)
    wait_for_output(process, " bpm fixed")  # the first answer has played out
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=20)
    midi = mido.MidiFile(tmp_path / "s.mid")
    assert [p for _, _, p in channel_notes(midi, 0)] == [60, 62, 64, 66]
    assert len(channel_notes(midi, 1)) >= 1


def test_midi_must_be_a_new_mid_file(cli, tmp_path, tiny_model):
    source = replay(tmp_path / "p.mid", [(0, 0.1, 60)])
    code, _, err = cli("live", "--input", source, "--model", tiny_model, "--output",
                       "wav:s.wav", "--midi", "s.txt")
    assert code == 2 and "--midi s.txt: expected a .mid file" in err
    Path("s.mid").write_bytes(b"precious")
    code, _, err = cli("live", "--input", source, "--model", tiny_model, "--output",
                       "wav:s.wav", "--midi", "s.mid")
    assert code == 2 and "exists already" in err and Path("s.mid").read_bytes() == b"precious"
    assert not Path("s.wav").exists()
