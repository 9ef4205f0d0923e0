import json
import signal
import subprocess
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from conftest import make_midi, random_weights
from test_record import replay, synth_process, wait_for_output
from synth.sound.effects import Effects
from synth.errors import SynthError
from synth.music.events import Event as Ev, events_of, events_to_names, starts, total_beats
from synth.learn.generate import Runner, Sampling, continue_melody
from synth.play.inputs import KeyEvent
from synth.play.answers import answer_notes
from synth.play.live import MAX_RESPOND, ON_BEAT_MARGIN, LiveSettings, Session
from synth.play.outputs import BLOCK, DeviceSink, MidiOutput, NullSink, SoundOutput
from synth.learn.model import Model, save_model
from synth.sound.piano import RATE
from synth.music.songs import read_song

C4, D4, E4, F4, G4 = 60, 62, 64, 65, 67


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


def answer_seconds(entry):
    return sum(entry["answer_lengths"]) * 60.0 / entry["bpm"]


def steady_weights():
    """A tiny random model whose answers hold no rests and only 1/2, 1 and 2 beat lengths, so
    that a test can tell how long they last."""
    weights = random_weights(seed=7)
    weights["length_bias"][:] = -30.0
    weights["length_bias"][[1, 3, 7]] = 0.0  # length class k is k + 1 quarter beats
    weights["dense_bias"][0] = -30.0  # class 0: the rest
    return weights


@pytest.fixture
def steady_model(tmp_path):
    folder = tmp_path / "steady-model"
    save_model(folder, steady_weights(), {"start_probs": [0.0] + [1 / 24] * 24})
    return folder


FRAME, STEP = 1024, 128  # the onset detector's spectra: 23 ms windows, 2.9 ms apart


def audio_onsets(audio, threshold=0.22):
    """Onset times (s) in a recording, by spectral flux: where the log spectrum grows most
    from one window to the next (a new note), peaks above `threshold` of the highest one,
    at most one per 50 ms. A time comes out a few ms late, the same for every note."""
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    mono = np.concatenate([np.zeros(FRAME), mono])
    frames = np.lib.stride_tricks.sliding_window_view(mono, FRAME)[::STEP]
    spectra = np.log1p(100 * np.abs(np.fft.rfft(frames * np.hanning(FRAME), axis=1)))
    flux = np.maximum(np.diff(spectra, axis=0), 0.0).sum(axis=1)
    flux /= flux.max()
    kept: list[int] = []
    for i in range(1, len(flux) - 1):
        if flux[i] < threshold or flux[i] < flux[i - 1] or flux[i] <= flux[i + 1]:
            continue
        if kept and (i - kept[-1]) * STEP <= 0.05 * RATE:
            if flux[i] > flux[kept[-1]]:
                kept[-1] = i
            continue
        kept.append(i)
    return (np.array(kept) + 1) * STEP / RATE


@pytest.mark.parametrize("bpm", [80, 160])
def test_the_onset_detector_finds_struck_notes_where_they_are(bpm):
    from synth.sound.piano import Performance, render_notes

    song = [Ev(13, 4), Ev(17, 2), Ev(10, 2), Ev(22, 8), Ev(0, 4), Ev(13, 2), Ev(13, 4),
            Ev(14, 2), Ev(15, 2), Ev(1, 4), Ev(24, 8)]
    expected = [s * 15 / bpm for s, e in zip(starts(song), song) if not e.is_rest]
    found = audio_onsets(render_notes(song, Performance(bpm=bpm)))
    assert len(found) == len(expected)
    assert 0 <= found[0] < 0.02
    assert np.max(np.abs(found - found[0] - expected)) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("bpm", [80, 160])
def test_live_answers_in_the_players_tempo_on_the_players_beat(cli, tmp_path, steady_model,
                                                                bpm):
    # Five notes on the beat, each held 0.9 beat, in a MIDI file at this tempo.
    pitches = [C4, D4, E4, F4, G4]
    source = make_midi(tmp_path / "p.mid", [[(b, b + 0.9, p) for b, p in enumerate(pitches)]],
                       tempos=[(0.0, bpm)])
    code, out, err = cli("live", "--input", f"replay:{source}", "--model", steady_model,
                         "--output", "wav:session.wav", "--log", "log.jsonl", "--gap", 0.3,
                         "--respond", 3, "--seed", 1, "--no-fx")
    assert code == 0, err
    [entry] = read_log("log.jsonl")
    assert entry["bpm"] == pytest.approx(bpm, rel=0.03) and entry["bpm_from"] == "phrase"
    assert entry["phrase"] == [13, 15, 17, 18, 20] and entry["phrase_lengths"] == [1.0] * 5
    assert len(entry["answer"]) == 3 and 0 not in entry["answer"]
    answer = [Ev(c, round(b * 4)) for c, b in zip(entry["answer"], entry["answer_lengths"])]
    assert f"{events_to_names(answer)}  ({entry['bpm']:.0f} bpm" in out

    audio, _ = soundfile.read("session.wav")
    found = audio_onsets(audio)
    assert len(found) == 5 + 3
    player, heard = found[:5], found[5:]
    # The player's beat grid, from their own notes in the recording.
    period = 60.0 / bpm
    phase = np.mean(player - period * np.arange(5))
    assert np.max(np.abs(player - phase - period * np.arange(5))) < 0.01
    # The first answer note: the first beat after the phrase end (its last key up + the gap)
    # that is at least 20 ms away, within 20 ms.
    phrase_end = phase + 4.9 * period + 0.3
    beat = np.ceil((phrase_end + ON_BEAT_MARGIN - phase) / period)
    assert abs(heard[0] - (phase + beat * period)) < 0.02
    # The rest of the answer on the grid its lengths make at the logged tempo.
    expected = np.array(starts(answer)) * 60.0 / entry["bpm"] / 4
    assert np.max(np.abs(heard - heard[0] - expected)) < 0.015
    # The log's start agrees with the recording (the log counts from the session's start, the
    # recording from its own, a few ms apart).
    assert entry["start"] - entry["time"] == pytest.approx(
        heard[0] - (phase + 4.9 * period + 0.3), abs=0.02)


@pytest.mark.slow
def test_live_answers_each_phrase_and_saves_the_session(cli, tmp_path, steady_model):
    notes = phrases(3, pause=1.5)
    code, out, err = cli("live", "--input", replay(tmp_path / "p.mid", notes), "--model",
                         steady_model, "--output", "wav:session.wav", "--log", "log.jsonl",
                         "--gap", 0.3, "--bpm", 400, "--seed", 1)
    assert code == 0, err
    log = read_log("log.jsonl")
    assert [entry["phrase"] for entry in log] == [[13, 15, 17], [14, 16, 18], [15, 17, 19]]
    for entry in log:
        # A note every beat at 400 bpm, the last held 0.8 beat: on the quarter-beat grid.
        assert entry["phrase_lengths"] == [1.0, 1.0, 0.75]
        assert len(entry["answer"]) == len(entry["answer_lengths"]) == 3  # as many as played
        assert all(1 <= c <= 24 for c in entry["answer"])
        assert set(entry["answer_lengths"]) <= {0.5, 1.0, 2.0}
        assert 0 < entry["latency_ms"] < 1000 and entry["played"] == 3
        assert not entry["interrupted"]
        assert entry["bpm"] == 400 and entry["bpm_from"] == "fixed"
        # The answer waits for the next beat (0.15 s apart), never under 20 ms away.
        assert ON_BEAT_MARGIN - 0.001 <= entry["start"] - entry["time"] <= 0.15 + 0.021
    # Each phrase ends 0.3 s (the gap) after its last key came up.
    ends = [notes[3 * p + 2][1] + 0.3 for p in range(3)]
    assert [entry["time"] for entry in log] == pytest.approx(ends, abs=0.1)
    assert "you" in out and "synth" in out and "C4 D4 E4" in out and "400 bpm fixed" in out
    # The WAV holds the player and the answers, each where it happened.
    audio, rate = soundfile.read("session.wav")
    assert rate == RATE and audio.shape[1] == 2
    last = log[-1]
    assert len(audio) / RATE == pytest.approx(
        last["start"] + answer_seconds(last) + 1.0, abs=0.6)
    for p, entry in enumerate(log):
        start, end = notes[3 * p][0], entry["start"] + answer_seconds(entry)
        assert rms(audio, start + 0.02, start + 0.4) > 0.01  # the phrase
        assert rms(audio, entry["start"] + 0.02, entry["start"] + 0.3) > 0.01  # the answer
        silent_from = end + 0.35  # the answer and its release have rung out
        assert rms(audio, silent_from, silent_from + 0.2) < rms(
            audio, entry["start"], entry["start"] + 0.3) / 3
    assert np.max(np.abs(audio)) < 10 ** (-1 / 20) + 1e-3


@pytest.mark.slow
def test_same_seed_same_answers_and_respond_sets_the_length(cli, tmp_path, steady_model):
    source = replay(tmp_path / "p.mid", phrases(2, pause=1.0))
    logs = []
    for name in ("a", "b"):
        assert cli("live", "--input", source, "--model", steady_model, "--output",
                   f"wav:{name}.wav", "--log", f"{name}.jsonl", "--gap", 0.2, "--bpm", 400,
                   "--seed", 5, "--respond", 2)[0] == 0
        logs.append(read_log(f"{name}.jsonl"))
    for key in ("answer", "answer_lengths", "bpm"):
        assert [e[key] for e in logs[0]] == [e[key] for e in logs[1]]
    assert [len(e["answer"]) for e in logs[0]] == [2, 2]


@pytest.mark.slow
@pytest.mark.parametrize("interrupt", [True, False])
def test_playing_during_an_answer_cuts_it_short(cli, tmp_path, steady_model, interrupt):
    # 12 events of 1/2 to 2 beats at 150 bpm last 2.4 s or more; the second phrase starts
    # about 1.5 s after the first answer does.
    notes = phrases(2, pause=1.8)
    args = ["live", "--input", replay(tmp_path / "p.mid", notes), "--model", steady_model,
            "--output", "wav:s.wav", "--log", "log.jsonl", "--gap", 0.3, "--respond", 12,
            "--bpm", 150, "--seed", 2]
    code, out, err = cli(*args, *([] if interrupt else ["--no-interrupt"]))
    assert code == 0, err
    first, second = read_log("log.jsonl")
    if interrupt:
        assert first["interrupted"] and 1 <= first["played"] < 12
        assert "cut short" in out
        # Cut where the second phrase began: the events begun by then, by their lengths.
        cut = first["time"] + notes[3][0] - notes[2][1] - 0.3
        begun = (cut - first["start"]) * 150 / 60
        onsets = np.concatenate([[0.0], np.cumsum(first["answer_lengths"])])
        near = np.abs(onsets - begun) < 0.05  # an event starting right then may go either way
        expected = int(np.sum(onsets <= begun))
        assert first["played"] in ({expected, expected - 1} if near.any() else {expected})
        # The second answer came right after the second phrase.
        assert second["time"] == pytest.approx(notes[5][1] + 0.3, abs=0.1)
    else:
        assert not first["interrupted"] and first["played"] == 12
        # The second phrase waits for the first answer to finish before it is answered.
        assert second["time"] == pytest.approx(first["start"] + answer_seconds(first),
                                               abs=0.02)
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
    monkeypatch.setattr("synth.play.devices.audio_output_names", lambda problems=None: [])
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
    (["--respond", "501"], "expected 1-500 events"),
    (["--bpm", "1000"], "--bpm"),
    (["--bpm", "0"], "--bpm"),
    (["--bpm", "nan"], "--bpm"),
    (["--temperature", "0"], "--temperature"),
    (["--log", "log.csv"], "expected a .jsonl file"),
    (["--input", "replay:nothing.mid"], "nothing.mid: no such file"),
])
def test_bad_flags_are_one_line_errors(cli, tmp_path, tiny_model, args, message, monkeypatch):
    monkeypatch.setattr("synth.play.devices.audio_output_names", lambda problems=None: [])
    monkeypatch.setattr("synth.play.devices.midi_output_names", lambda problems=None: [])
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
    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now


def press(t, pitch, velocity=80):
    return KeyEvent(t, mido.Message("note_on", note=pitch, velocity=velocity))


def lift(t, pitch):
    return KeyEvent(t, mido.Message("note_off", note=pitch))


class Recorder:
    """An output that writes down what it was asked to do."""

    def __init__(self):
        self.calls = []
        self.notes = []

    def player_down(self, pitch, velocity, t):
        self.calls.append(("down", pitch, t))

    def player_up(self, pitch, t):
        self.calls.append(("up", pitch, t))

    def play(self, notes, start, now):
        self.notes.append(notes)
        self.calls.append(("play", [n.pitch for n in notes], start, now))

    def extend(self, notes):
        self.notes[-1] = self.notes[-1] + notes
        self.calls.append(("extend", [n.pitch for n in notes]))

    def cut(self, t):
        self.calls.append(("cut", t))

    def pump(self, now):
        pass

    def next_due(self):
        return float("inf")

    def close(self):
        return []


def model(weights=None):
    return Model(weights or random_weights(seed=4), {"start_probs": [0.0] + [1 / 24] * 24})


def play_phrase(session, clock, beats, bpm, start=0.0):
    """Play notes at these beats, each held for 90% of the time to the next (the last 0.9
    beat), then let the gap pass: the session answers."""
    period = 60.0 / bpm
    ends = [b + 0.9 * (after - b) for b, after in zip(beats, beats[1:])] + [beats[-1] + 0.9]
    for index, (beat, end) in enumerate(zip(beats, ends)):
        pitch = [C4, E4, G4, D4, F4][index % 5]
        session.handle(press(start + beat * period, pitch))
        session.handle(lift(start + end * period, pitch))
    clock.now = start + ends[-1] * period + session.settings.gap + 0.001  # the next tick
    session.tick(clock.now)
    return session.current


def play_out(session, clock, step=0.005):
    """Tick through the answer in progress until it has played out; returns when it did."""
    while session.current is not None:
        clock.now += step
        session.tick(clock.now)
    return clock.now


@pytest.mark.parametrize("bpm", [80, 125, 160])
def test_the_answer_is_played_in_the_tempo_and_on_the_beat_of_the_phrase(bpm):
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.3), clock=clock)
    beats = [0, 1, 2, 2.5, 3, 4, 6]  # quarters, two eighths, a half note
    exchange = play_phrase(session, clock, beats, bpm, start=1.0)
    play_out(session, clock)
    assert exchange.bpm == pytest.approx(bpm) and exchange.bpm_from == "phrase"
    assert [e.quarters for e in exchange.phrase] == [4, 4, 2, 2, 4, 8, 4]  # the last held 0.9
    period = 60.0 / bpm
    beat = (exchange.start + session.origin - 1.0) / period
    assert beat == pytest.approx(round(beat))  # on the player's grid
    assert ON_BEAT_MARGIN <= exchange.start - exchange.time < ON_BEAT_MARGIN + period
    # Every note held for its length at that tempo, from the answer's start.
    [notes] = output.notes
    quarter = period / 4
    answer = exchange.answer
    assert [(n.on, n.off, n.pitch, n.velocity) for n in notes] == [
        (pytest.approx(s * quarter), pytest.approx((s + e.quarters) * quarter), 47 + e.cls, 80)
        for e, s in zip(answer, starts(answer)) if e.cls != 0]
    assert exchange.seconds == pytest.approx(total_beats(answer) * period)


def test_the_answer_lasts_its_lengths_from_its_start():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.3), clock=clock)
    exchange = play_phrase(session, clock, [0, 1, 2, 3], 100)
    ended = play_out(session, clock, step=0.001)
    end = session.origin + exchange.start + exchange.seconds
    assert end <= ended < end + 0.001 + 1e-9
    assert 1 <= exchange.played == len(exchange.answer) <= 4 and not exchange.interrupted


def test_a_key_pressed_before_the_answers_first_beat_cuts_all_of_it():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.3), clock=clock)
    exchange = play_phrase(session, clock, [0, 1, 2, 3], 60)  # beats 1 s apart: a long wait
    assert exchange.start - exchange.time > 0.5
    session.handle(press(clock.now + 0.1, E4))
    assert exchange.interrupted and exchange.played == 0 and session.current is None
    assert ("cut", pytest.approx(clock.now + 0.1)) in output.calls


def test_a_cut_counts_the_events_begun_by_their_real_lengths():
    clock, output = Clock(now=1000.0), Recorder()  # the session starts at 1000 s
    weights = steady_weights()
    session = Session(model(weights), output,
                      LiveSettings(gap=0.3, respond=12, sampling=Sampling(seed=1)), clock=clock)
    exchange = play_phrase(session, clock, [0, 1, 2, 3], 120, start=1001.0)

    def onsets():
        return [session.origin + exchange.start + s * 0.125 for s in starts(exchange.answer)]

    while len(exchange.answer) < 4 or clock.now < onsets()[3] + 0.01:
        clock.now += 0.005
        session.tick(clock.now)
    assert len(set(e.quarters for e in exchange.answer[:4])) > 1  # lengths that differ
    session.handle(press(clock.now, E4))  # just after the fourth event began
    assert exchange.interrupted and exchange.played == 4


def drawn_at_once(phrase, count, seed, weights=None):
    """The reference: the phrase fed into a fresh melody, then `count` events drawn in one
    go by generate.continue_melody; returns them, the melody and the random generator."""
    melody = Runner(model(weights))
    melody.feed(phrase)
    rng = np.random.default_rng(seed)
    return continue_melody(melody, count, Sampling(seed=seed), rng), melody, rng


def test_a_cut_mid_answer_leaves_the_melody_where_the_sounded_events_left_it():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.3, respond=40,
                                                    sampling=Sampling(seed=5)), clock=clock)
    exchange = play_phrase(session, clock, [0, 1, 2, 3], 120)
    while exchange.begun(clock.now - session.origin) < 6 or \
            len(exchange.answer) == exchange.begun(clock.now - session.origin):
        clock.now += 0.01
        session.tick(clock.now)
    session.handle(press(clock.now, E4))
    played = exchange.played
    assert exchange.interrupted and 6 <= played < len(exchange.answer) < 40  # drawn ahead
    sounded, melody, rng = drawn_at_once(exchange.phrase, played, seed=5)
    assert exchange.answer[:played] == sounded
    # Nothing of the events drawn ahead stays: neither in the melody nor in the random
    # numbers, so the next answer goes on as if only the sounded events had been drawn.
    assert np.allclose(session.responder.melody.h, melody.h)
    assert np.allclose(session.responder.melody.c, melody.c)
    assert session.responder.rng.random() == rng.random()


@pytest.mark.slow
def test_a_long_answer_is_drawn_as_it_plays_and_a_cut_logs_what_sounded(tmp_path, tiny_model):
    source = replay(tmp_path / "p.mid", phrases(1))
    process = synth_process(["live", "--input", source, "--model", str(tiny_model), "--output",
                             "wav:s.wav", "--log", "log.jsonl", "--gap", "0.2", "--bpm", "400",
                             "--respond", "300", "--seed", "1"],
                            tmp_path, stdin=subprocess.DEVNULL)
    wait_for_output(process, "synth ")
    process.send_signal(signal.SIGINT)  # 300 events take half a minute or more to play
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    [entry] = read_log(tmp_path / "log.jsonl")
    assert entry["interrupted"] and entry["played"] <= len(entry["answer"]) < 300
    assert f"cut short after {entry['played']} events" in out.decode()


def lengths_only(quarters):
    """Weights whose answers hold only notes (no rests) of these lengths (quarter beats)."""
    weights = random_weights(seed=7)
    weights["length_bias"][:] = -30.0
    weights["length_bias"][[q - 1 for q in quarters]] = 0.0
    weights["dense_bias"][0] = -30.0
    return weights


def test_respond_asks_for_up_to_500_events():
    assert LiveSettings(respond=MAX_RESPOND).check().respond == 500
    with pytest.raises(SynthError, match="--respond 501 is out of range: expected 1-500"):
        LiveSettings(respond=501).check()


def test_sound_output_has_the_answer_ready_when_play_returns():
    sink = NullSink()
    blocks = []
    sink.write = blocks.append
    sound = SoundOutput(sink, origin=0.0)
    sound.pump(1.0)
    rendered = len(blocks)
    assert rendered * BLOCK >= int((1.0 - sink.lag) * RATE) - BLOCK
    assert all(np.max(np.abs(b)) == 0 for b in blocks)  # nothing played yet
    sound.play(answer_notes(events_of([13, 17]), 150, 90), start=1.0, now=1.0)
    assert np.max(np.abs(np.concatenate(blocks[rendered:]))) > 0.01  # first answer block
    sound.cut(1.1)
    sound.close()
    assert not sound.piano.busy()


def test_sound_output_starts_a_later_answer_on_its_frame():
    sink = NullSink()
    blocks = []
    sink.write = blocks.append
    sound = SoundOutput(sink, Effects(enabled=False), origin=0.0)
    sound.pump(1.0)
    sound.play(answer_notes(events_of([13, 17]), 150, 90), start=1.3, now=1.0)
    ready = sum(len(b) for b in blocks)
    assert ready < 1.3 * RATE  # only what is due now was rendered
    sound.close()
    audio = np.concatenate(blocks)[:, 0]
    first = np.flatnonzero(np.abs(audio) > 1e-4)[0]
    assert 0 <= first - round(1.3 * RATE) < 0.002 * RATE


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
    out.play(answer_notes([Ev(13, 2), Ev(17, 4), Ev(20, 4)], 120, 90), start=10.5, now=10.0)
    assert port.sent == [] and out.next_due() == 10.5  # waiting for its beat
    out.pump(10.5)
    assert [(m.type, m.note) for m in port.sent] == [("note_on", 60)]
    out.pump(10.75)
    assert [(m.type, m.note) for m in port.sent[1:]] == [("note_off", 60), ("note_on", 64)]
    out.cut(10.9)
    assert [(m.type, m.note) for m in port.sent[3:]] == [("note_off", 64)]
    out.pump(20.0)
    out.close()
    assert len(port.sent) == 4 and port.closed


def test_midi_output_gets_the_answer_as_it_is_drawn():
    class Port:
        sent = []

        def send(self, msg):
            self.sent.append(msg)

        def close(self):
            pass

    class Parts(MidiOutput):
        parts = []

        def extend(self, notes):  # play's first notes come through here too
            self.parts.append(len(notes))
            super().extend(notes)

    clock = Clock()
    out = Parts(Port())
    session = Session(model(lengths_only([2, 4])), out,
                      LiveSettings(gap=0.3, respond=40, sampling=Sampling(seed=4)), clock=clock)
    exchange = play_phrase(session, clock, [0, 1, 2, 3], 120)
    play_out(session, clock)
    assert sum(Parts.parts) == 40 and max(Parts.parts) <= 5  # half a second at a time
    session.close()
    on = [(m.note, m.velocity) for m in Port.sent if m.type == "note_on"]
    assert on == [(47 + e.cls, 80) for e in exchange.answer] and len(on) == 40
    assert sum(m.type == "note_off" for m in Port.sent) == 40


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


def test_the_next_session_recovers_what_an_older_one_left_hidden(cli, tmp_path, tiny_model):
    from test_journal import old_leftovers

    wav, log = old_leftovers(Path("."), seconds=2.0, answers=4)
    source = replay(tmp_path / "p.mid", [(0, 0.1, C4)])
    code, out, err = cli("live", "--input", source, "--model", tiny_model, "--output",
                         "wav:s.wav", "--log", "new.jsonl", "--gap", 0.1, "--bpm", 400)
    assert code == 2 and "s.wav exists already" in err  # the old session took the name first
    assert "Recovered 2.0 s of sound of an unfinished live session: saved s.wav" in out
    assert "Recovered 4 answers of an unfinished live session: saved log.jsonl" in out
    assert soundfile.info("s.wav").duration == pytest.approx(2.0)
    assert len(read_log(Path("log.jsonl"))) == 4 and not wav.exists() and not log.exists()
    code, out, err = cli("live", "--input", source, "--model", tiny_model, "--output",
                         "wav:s2.wav", "--gap", 0.1, "--bpm", 400)
    assert code == 0 and "Recovered" not in out


def test_recover_finds_sessions_in_the_folders_named(cli, tmp_path):
    from test_journal import old_leftovers

    Path("sessions").mkdir()
    old_leftovers(Path("sessions"))
    code, out, _ = cli("recover")
    assert code == 0 and "Nothing to recover" in out
    code, out, _ = cli("recover", "sessions")
    assert code == 0 and out.count("Recovered") == 2
    assert sorted(p.name for p in Path("sessions").iterdir()) == ["log.jsonl", "s.wav"]


def test_a_session_killed_mid_way_leaves_its_wav_and_log_under_their_names(tmp_path,
                                                                            tiny_model):
    """What a kill leaves, seen from inside: both files are there and whole while the session
    runs (the fault-injection suite kills real processes)."""
    from synth.play.exchanges import AnswerLog
    from synth.learn.model import load_model
    from synth.play.outputs import SoundOutput, WavSink

    clock = [0.0]
    sink = WavSink(tmp_path / "s.wav")
    session = Session(load_model(tiny_model), SoundOutput(sink), LiveSettings(gap=0.2, bpm=400),
                      AnswerLog(tmp_path / "log.jsonl"), clock=lambda: clock[0])
    for start in (0.0, 4.0):  # an answer lasts at most 16 beats: 2.4 s
        for i, pitch in enumerate((C4, E4, G4)):
            t = start + 0.15 * i
            session.handle(KeyEvent(t, mido.Message("note_on", note=pitch, velocity=90)))
            session.handle(KeyEvent(t + 0.1, mido.Message("note_off", note=pitch)))
        while clock[0] < start + 3.9:
            clock[0] += 0.005
            session.tick(clock[0])
    assert len(session.exchanges) == 2
    assert len(read_log(tmp_path / "log.jsonl")) == 2  # no close: as a kill leaves it
    assert soundfile.info(tmp_path / "s.wav").duration >= clock[0] - 1.0
    session.close()


# --- turn-taking in real time: phrases with rests, the answer on the beat, the duet as MIDI ---


PITCHES = [C4, D4, E4, F4, G4, E4, D4, C4]
RESTED = [13, 15, 17, 18, 0, 20, 17, 0, 15, 13]  # the phrase's events
SPACING = 19  # beats from a phrase's start to the next: over two bars of silence between


def rested_phrase(offset=0.0, last=1.3):
    """Eight notes on the beat, held 0.9 beat, with one-beat rests after the fourth and the
    sixth; the last note is held `last` beats. (start, end, pitch) in beats from `offset`.
    (Quarter notes most of the way, so that its tempo does not read as half as fast.)"""
    beats = [0, 1, 2, 3, 5, 6, 8, 9]
    return [(offset + b, offset + b + (last if i == 7 else 0.9), PITCHES[i])
            for i, b in enumerate(beats)]


def channel_notes(midi, channel):
    """(start, end, pitch) in seconds of one channel's notes, read back through the file's
    tempo map (mido)."""
    from synth.music.midi import pair_notes

    timed, now = [], 0.0
    for msg in midi:
        now += msg.time
        if msg.type in ("note_on", "note_off") and msg.channel == channel:
            timed.append((now, msg))
    return [(n.start, n.end, n.pitch) for n in pair_notes(timed, now)]


@pytest.mark.slow
@pytest.mark.parametrize("bpm", [80, 120, 160])
def test_turn_taking_in_real_time_heard_in_the_session_wav_and_kept_as_midi(cli, tmp_path, bpm):
    folder = tmp_path / "model"
    save_model(folder, lengths_only([2, 4]), {"start_probs": [0.0] + [1 / 24] * 24})
    notes = rested_phrase() + rested_phrase(SPACING) + rested_phrase(2 * SPACING, last=0.9)
    source = make_midi(tmp_path / "p.mid", [notes], tempos=[(0.0, bpm)])
    code, out, err = cli("live", "--input", f"replay:{source}", "--model", folder, "--output",
                         "wav:session.wav", "--log", "log.jsonl", "--midi", "session.mid",
                         "--respond", 4, "--seed", 3, "--no-fx")
    assert code == 0, err
    assert "session.mid" in out
    log = read_log("log.jsonl")
    # Every phrase answered once, whole: its one-beat rests never ended it.
    assert [e["phrase"] for e in log] == [RESTED] * 3
    assert all(len(e["answer"]) == e["played"] == 4 and not e["early"] for e in log)
    period = 60.0 / bpm

    # The recording: the player's notes where they were played, the answers between them.
    audio, _ = soundfile.read("session.wav")
    found = audio_onsets(audio)
    played = np.array([s for s, _, _ in notes]) * period
    shift = found[0] - played[0]
    # The player's onsets, each the one nearest where the file has it (the replay is a few
    # ms late on a busy machine); the answers' are at least 1.5 beats from any.
    nearest = np.abs(found[:, None] - (played + shift)[None, :])
    mine = nearest.min(axis=1) < 0.15
    assert mine.sum() == len(played) == 24, np.round(found - shift, 3).tolist()
    player, answers = found[mine], found[~mine]
    assert len(answers) == 3 * 4
    # The last key up of each phrase: its last onset heard, and how long the key was held.
    releases = player[[7, 15, 23]] + np.array([1.3, 1.3, 0.9]) * period
    firsts = np.append(player[[0, 8, 16]], np.inf)
    delays = []
    for index, release in enumerate(releases):
        # No answer note inside a phrase: each answer lies between its phrase's last key up
        # and the next phrase's first note.
        heard = answers[(answers > firsts[index]) & (answers < firsts[index + 1])]
        assert len(heard) == 4 and heard[0] > release
        delays.append((heard[0] - release) / period)
    # From the last key up to the first answer note: 1.5 beats of silence, then the next
    # beat. Under two beats where the key came up early in a beat (1.7 expected), 2.1 where
    # it came up just before one (the third phrase), as a one-beat rest could follow there.
    # (1.7, 1.7 and 2.1 beats on an idle machine; the replay's keys come a few ms late on a
    # busy one.)
    assert 1.4 < delays[0] < 2 and 1.4 < delays[1] < 2 and 1.4 < delays[2] < 2.5
    logged = [e["delay_beats"] for e in log]
    assert logged == pytest.approx(delays, abs=0.2)
    assert [e["gap_beats"] for e in log] == pytest.approx([1.5] * 3, abs=0.05)

    # The session MIDI: the player and the model, each note where and as long as it sounded.
    midi = mido.MidiFile("session.mid")
    assert midi.type == 1 and [t.name for t in midi.tracks] == ["player", "synth"]
    mine, model = channel_notes(midi, 0), channel_notes(midi, 1)
    assert [p for _, _, p in mine] == [p for _, _, p in notes]
    start = mine[0][0]
    assert np.allclose([(s - start, e - start) for s, e, _ in mine],
                       [((s - notes[0][0]) * period, (e - notes[0][0]) * period)
                        for s, e, _ in notes], atol=0.1)  # the replay's timing, give or take
    assert np.allclose([e - s for s, e, _ in mine],  # held as long as in the replayed file
                       [(e - s) * period for s, e, _ in notes], atol=0.05)
    offset = log[0]["release"] - mine[7][1]  # the session's clock against the file's
    expected = [(e["start"] + q * period / 4, e["start"] + (q + length * 4) * period / 4, 47 + c)
                for e in log for c, length, q in zip(e["answer"], e["answer_lengths"],
                                                     np.cumsum([0] + [4 * x for x in
                                                                      e["answer_lengths"]]))]
    assert [p for _, _, p in model] == [p for _, _, p in expected]
    assert np.allclose([(s + offset, e + offset) for s, e, _ in model],
                       [(s, e) for s, e, _ in expected], atol=0.003)

    # Imported back (synth import), the duet is the phrases and answers as the session heard
    # and played them, one after the other, with rests between.
    code, out, err = cli("import", "session.mid")
    assert code == 0, err
    [song_file] = Path("dataset").glob("*.txt")
    events = read_song(song_file).events
    parts = []
    for e in log:
        parts.append([Ev(c, round(b * 4)) for c, b in zip(e["phrase"], e["phrase_lengths"])])
        parts.append([Ev(c, round(b * 4)) for c, b in zip(e["answer"], e["answer_lengths"])])
    at = 0
    for part in parts:
        while events[at].is_rest:
            at += 1
        assert events[at : at + len(part)] == part
        at += len(part)
    assert all(e.is_rest for e in events[at:])

    if bpm == 120:  # rendered, both parts sound: every note of the duet is an onset
        code, out, err = cli("render", "session.mid", "--out", "duet.wav", "--no-fx")
        assert code == 0, err
        assert "2 parts (player, synth)" in out
        rendered, _ = soundfile.read("duet.wav")
        assert len(audio_onsets(rendered)) == 24 + 12


@pytest.mark.slow
def test_overlap_from_the_command_line_is_logged(cli, tmp_path, steady_model):
    notes = phrases(2, pause=1.8)  # the second phrase comes about 1.5 s into the first answer
    code, out, err = cli("live", "--input", replay(tmp_path / "p.mid", notes), "--model",
                         steady_model, "--output", "wav:s.wav", "--log", "log.jsonl", "--gap",
                         0.3, "--respond", 12, "--bpm", 150, "--seed", 2, "--overlap")
    assert code == 0, err
    first, second = read_log("log.jsonl")
    assert first["overlapped"] and first["interrupted"] and not second["overlapped"]
    # It sounded to the end of its first bar (4 beats at 150 bpm: 1.6 s), no further.
    lengths = first["answer_lengths"][: first["played"]]
    assert sum(lengths[:-1]) < 4  # the last event that sounded began inside the bar
    assert sum(lengths) >= 4 or len(first["answer"]) == first["played"]  # the next did not
    assert first["played"] < 12 and "to the end of the bar you came in on" in out
    assert second["phrase"] == [14, 16, 18]
