import json
import signal
import subprocess
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from conftest import random_weights
from test_record import replay, synth_process, wait_for_output
from synth.errors import SynthError
from synth.generate import Melody, Sampling
from synth.inputs import Event
from synth.live import (BLOCK, DeviceSink, Exchange, LiveSettings, MidiOutput, NullSink,
                        Responder, Session, SoundOutput, answer_notes)
from synth.modelfile import Model
from synth.piano import RATE

C4, D4, E4, G4 = 60, 62, 64, 67


def phrases(count, notes_per_phrase=3, note=0.15, pause=1.0, first=C4):
    """(start, end, pitch) notes in seconds: `count` phrases, `pause` s of silence after each."""
    notes, t = [], 0.0
    for p in range(count):
        for i in range(notes_per_phrase):
            notes.append((t, t + note * 0.8, first + (p + 2 * i) % 12))
            t += note
        t += pause
    return notes


def read_log(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def rms(audio, start, end):
    part = audio[int(start * RATE) : int(end * RATE)]
    return float(np.sqrt(np.mean(part ** 2))) if len(part) else 0.0


@pytest.mark.slow
def test_live_answers_each_phrase_and_saves_the_session(cli, tmp_path, tiny_model):
    notes = phrases(3, pause=1.5)
    code, out, err = cli("live", "--input", replay(tmp_path / "p.mid", notes), "--model",
                         tiny_model, "--output", "wav:session.wav", "--log", "log.jsonl",
                         "--gap", 0.3, "--bpm", 400, "--seed", 1)
    assert code == 0, err
    log = read_log("log.jsonl")
    assert [entry["phrase"] for entry in log] == [[13, 15, 17], [14, 16, 18], [15, 17, 19]]
    for entry in log:
        assert len(entry["answer"]) == 3  # as many as the phrase had
        assert all(0 <= t <= 24 for t in entry["answer"])
        assert 0 < entry["latency_ms"] < 1000 and entry["played"] == 3
        assert not entry["interrupted"]
    # Each phrase ends 0.3 s (the gap) after its last key came up.
    ends = [notes[3 * p + 2][1] + 0.3 for p in range(3)]
    assert [entry["time"] for entry in log] == pytest.approx(ends, abs=0.1)
    assert "you" in out and "synth" in out and "C4 D4 E4" in out
    # The WAV holds the player and the answers, each where it happened.
    audio, rate = soundfile.read("session.wav")
    assert rate == RATE and audio.shape[1] == 2
    assert len(audio) / RATE == pytest.approx(notes[-1][1] + 0.3 + 3 * 0.15 + 1.0, abs=0.6)
    for p, end in enumerate(ends):
        start = notes[3 * p][0]
        assert rms(audio, start + 0.02, start + 0.4) > 0.01  # the phrase
        assert rms(audio, end + 0.02, end + 0.4) > 0.01  # the answer
        silent_from = end + 0.45 + 0.35  # the answer and its release have rung out
        assert rms(audio, silent_from, silent_from + 0.2) < rms(audio, end, end + 0.4) / 3
    assert np.max(np.abs(audio)) < 10 ** (-1 / 20) + 1e-3


@pytest.mark.slow
def test_same_seed_same_answers_and_respond_sets_the_length(cli, tmp_path, tiny_model):
    source = replay(tmp_path / "p.mid", phrases(2, pause=0.5))
    logs = []
    for name in ("a", "b"):
        assert cli("live", "--input", source, "--model", tiny_model, "--output",
                   f"wav:{name}.wav", "--log", f"{name}.jsonl", "--gap", 0.2, "--bpm", 400,
                   "--seed", 5, "--respond", 2)[0] == 0
        logs.append(read_log(f"{name}.jsonl"))
    assert [e["answer"] for e in logs[0]] == [e["answer"] for e in logs[1]]
    assert [len(e["answer"]) for e in logs[0]] == [2, 2]


@pytest.mark.slow
@pytest.mark.parametrize("interrupt", [True, False])
def test_playing_during_an_answer_cuts_it_short(cli, tmp_path, tiny_model, interrupt):
    # A 16-note answer at 150 bpm lasts 6.4 s; the second phrase starts 1.5 s into it.
    notes = phrases(2, pause=1.8)
    args = ["live", "--input", replay(tmp_path / "p.mid", notes), "--model", tiny_model,
            "--output", "wav:s.wav", "--log", "log.jsonl", "--gap", 0.3, "--respond", 16,
            "--seed", 2]
    code, out, err = cli(*args, *([] if interrupt else ["--no-interrupt"]))
    assert code == 0, err
    first, second = read_log("log.jsonl")
    if interrupt:
        assert first["interrupted"] and 2 <= first["played"] <= 6
        assert "cut short" in out
        # The second answer came right after the second phrase.
        assert second["time"] == pytest.approx(notes[5][1] + 0.3, abs=0.1)
    else:
        assert not first["interrupted"] and first["played"] == 16
        # The second phrase waits for the first answer to finish before it is answered.
        assert second["time"] == pytest.approx(first["time"] + 6.4, abs=0.1)
    assert second["phrase"] == [14, 16, 18]


@pytest.mark.slow
def test_ctrl_c_ends_the_session_and_saves_everything(tmp_path, tiny_model):
    source = replay(tmp_path / "p.mid", phrases(20, pause=0.5))
    process = synth_process(["live", "--input", source, "--model", str(tiny_model), "--output",
                             "wav:s.wav", "--log", "log.jsonl", "--gap", "0.2", "--bpm", "400"],
                            tmp_path, stdin=subprocess.DEVNULL)
    wait_for_output(process, "synth ")  # the first answer
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert b"Session ended by Ctrl-C" in out
    log = read_log(tmp_path / "log.jsonl")
    assert 1 <= len(log) < 20
    audio, _ = soundfile.read(tmp_path / "s.wav")
    assert len(audio) > RATE // 2
    assert not list(tmp_path.glob(".*tmp*"))


def test_without_a_sound_card_the_session_goes_to_a_wav(cli, tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr("synth.devices.audio_output_names", lambda problems=None: [])
    source = replay(tmp_path / "p.mid", [(0, 0.1, C4)])
    code, out, err = cli("live", "--input", source, "--model", tiny_model, "--gap", 0.1,
                         "--bpm", 400)
    assert code == 0, err
    assert "out/live.wav" in out and Path("out/live.wav").exists()


@pytest.mark.parametrize("args,message", [
    (["--output", "speakers"], "--output 'speakers' is not understood"),
    (["--output", "wav:s.mp3"], "expected a .wav file"),
    (["--output", "audio"], "no audio output found"),
    (["--output", "midi:Synth"], "no MIDI output"),
    (["--gap", "0"], "--gap"),
    (["--respond", "0"], "--respond"),
    (["--bpm", "1000"], "--bpm"),
    (["--temperature", "0"], "--temperature"),
    (["--log", "log.csv"], "expected a .jsonl file"),
    (["--input", "replay:nothing.mid"], "nothing.mid: no such file"),
])
def test_bad_flags_are_one_line_errors(cli, tmp_path, tiny_model, args, message, monkeypatch):
    monkeypatch.setattr("synth.devices.audio_output_names", lambda problems=None: [])
    monkeypatch.setattr("synth.devices.midi_output_names", lambda problems=None: [])
    source = replay(tmp_path / "p.mid", [(0, 0.1, C4)])
    code, out, err = cli("live", "--input", source, "--model", tiny_model, *args)
    assert code == 2, out
    assert message in err and len(err.strip().splitlines()) == 1


def test_saved_outputs_are_never_overwritten(cli, tmp_path, tiny_model):
    source = replay(tmp_path / "p.mid", [(0, 0.1, C4)])
    Path("log.jsonl").write_text("precious\n")
    code, _, err = cli("live", "--input", source, "--model", tiny_model, "--output",
                       "wav:s.wav", "--log", "log.jsonl")
    assert code == 2 and "exists already" in err
    assert Path("log.jsonl").read_text() == "precious\n" and not Path("s.wav").exists()


def test_a_log_that_cannot_be_written_leaves_nothing_behind(cli, tmp_path):
    source = replay(tmp_path / "p.mid", [(0, 0.1, C4)])
    Path("a-file").write_text("")
    code, _, err = cli("live", "--input", source, "--output", "wav:s.wav", "--log",
                       "a-file/log.jsonl")
    assert code == 2 and "a-file" in err
    assert sorted(p.name for p in Path(".").iterdir()) == ["a-file", "p.mid"]  # no stray WAV


def test_a_broken_model_is_refused(cli, tmp_path):
    Path("model").mkdir()
    Path("model/manifest.json").write_text("{not json")
    source = replay(tmp_path / "p.mid", [(0, 0.1, C4)])
    code, _, err = cli("live", "--input", source, "--output", "wav:s.wav")
    assert code == 2 and "manifest.json" in err and not Path("s.wav").exists()


# --- the parts, driven directly with a clock the test controls ---


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def press(t, pitch, velocity=80):
    return Event(t, mido.Message("note_on", note=pitch, velocity=velocity))


def lift(t, pitch):
    return Event(t, mido.Message("note_off", note=pitch))


class Recorder:
    """An output that writes down what it was asked to do."""

    def __init__(self):
        self.calls = []

    def player_down(self, pitch, velocity, t):
        self.calls.append(("down", pitch, t))

    def player_up(self, pitch, t):
        self.calls.append(("up", pitch, t))

    def play(self, notes, t):
        self.calls.append(("play", [n.pitch for n in notes], t))

    def cut(self, t):
        self.calls.append(("cut", t))

    def pump(self, now):
        pass

    def next_due(self):
        return float("inf")

    def close(self):
        return []


def model():
    return Model(random_weights(seed=4), {"start_probs": [0.0] + [1 / 24] * 24})


def test_a_phrase_ends_only_after_the_gap_with_no_key_held():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.5, bpm=120), clock=clock)
    session.handle(press(0.0, C4))
    session.handle(press(0.4, E4))  # legato: C4 still held
    session.handle(lift(0.5, C4))
    for t in (0.6, 1.2):  # E4 is still held: no phrase end, however long
        clock.now = t
        session.tick(t)
    session.handle(lift(1.3, E4))
    clock.now = 1.79
    session.tick(1.79)
    assert session.current is None
    clock.now = 1.8
    session.tick(1.8)
    assert session.current.phrase == [13, 17] and len(session.current.answer) == 2
    assert output.calls[-1][0] == "play" and output.calls[-1][2] == 1.8


def test_the_end_of_the_input_lets_held_keys_go_and_answers_the_last_phrase():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.2), clock=clock)
    session.handle(press(0.0, C4))  # never released in the file
    session.handle(Event(1.0, None, "end of the replayed file"))
    clock.now = 1.25
    session.tick(1.25)
    assert session.current.phrase == [13] and ("up", C4, 1.0) in output.calls
    clock.now = 5.0
    session.tick(5.0)
    assert session.current is None and len(session.exchanges) == 1


def test_the_melody_state_carries_through_the_session():
    responder = Responder(model(), Sampling(seed=3))
    first = responder.answer([13, 17, 20], 4)
    second = responder.answer([15, 18], 3)
    fresh = Melody(model())
    fresh.feed([13, 17, 20] + first + [15, 18] + second)
    assert np.allclose(responder.melody.h, fresh.h) and np.allclose(responder.melody.c, fresh.c)


def test_a_cut_answer_is_remembered_only_as_far_as_it_sounded():
    responder = Responder(model(), Sampling(seed=3))
    answer = responder.answer([13, 17, 20], 6)
    responder.heard(2)
    fresh = Melody(model())
    fresh.feed([13, 17, 20] + answer[:2])
    assert np.allclose(responder.melody.h, fresh.h) and np.allclose(responder.melody.c, fresh.c)


def test_answers_hold_each_note_until_the_next_token():
    notes = answer_notes([13, 0, 17, 17], bpm=120, velocity=70)
    assert [(n.on, n.off, n.pitch, n.velocity) for n in notes] == [
        (0.0, 0.5, 60, 70), (1.0, 1.5, 64, 70), (1.5, 2.0, 64, 70)]


def test_sound_output_has_the_answer_ready_when_play_returns():
    sink = NullSink()
    blocks = []
    sink.write = blocks.append
    sound = SoundOutput(sink, origin=0.0)
    sound.pump(1.0)
    rendered = len(blocks)
    assert rendered * BLOCK >= int((1.0 - sink.lag) * RATE) - BLOCK
    assert all(np.max(np.abs(b)) == 0 for b in blocks)  # nothing played yet
    sound.play(answer_notes([13, 17], 150, 90), t=1.0)
    assert np.max(np.abs(np.concatenate(blocks[rendered:]))) > 0.01  # first answer block
    sound.cut(1.1)
    sound.close()
    assert not sound.piano.busy()


def test_midi_output_sends_the_answer_on_time_and_cuts_it():
    class Port:
        def __init__(self):
            self.sent = []
            self.closed = False

        def send(self, msg):
            self.sent.append(msg)

        def close(self):
            self.closed = True

    port = Port()
    out = MidiOutput(port)
    out.play(answer_notes([13, 17, 20], 120, 90), t=10.0)
    assert [(m.type, m.note) for m in port.sent] == [("note_on", 60)]  # ready at once
    out.pump(10.5)
    assert [(m.type, m.note) for m in port.sent[1:]] == [("note_off", 60), ("note_on", 64)]
    out.cut(10.6)
    assert [(m.type, m.note) for m in port.sent[3:]] == [("note_off", 64)]
    out.pump(20.0)
    out.close()
    assert len(port.sent) == 4 and port.closed


def test_device_sink_feeds_the_stream_in_order():
    written = []

    class Stream:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def write(self, audio, rate):
            written.append((audio.shape, rate, float(audio[0, 0])))

    sink = DeviceSink("fake", stream_factory=Stream)
    for value in (0.1, 0.2, 0.3):
        sink.write(np.full((BLOCK, 2), value, dtype=np.float32))
    sink.close()
    assert written == [((2, BLOCK), RATE, pytest.approx(v)) for v in (0.1, 0.2, 0.3)]


def test_a_device_that_fails_is_reported():
    class Broken:
        def __enter__(self):
            raise RuntimeError("device unplugged")

        def __exit__(self, *exc):
            pass

    sink = DeviceSink("fake", stream_factory=Broken)
    sink._thread.join(timeout=5)
    with pytest.raises(SynthError, match="audio output 'fake' stopped: device unplugged"):
        sink.write(np.zeros((BLOCK, 2), dtype=np.float32))


def test_exchange_log_lines_are_plain_json():
    exchange = Exchange(time=1.23456, phrase=[13], answer=[17, 0], latency_ms=1.23456,
                        played=2)
    assert exchange.record() == {"time": 1.235, "phrase": [13], "answer": [17, 0],
                                 "latency_ms": 1.235, "played": 2, "interrupted": False,
                                 "left_out": 0}
