"""`synth live`: phrase end detected -> first answer audio ready (SPEC section 7: under 20 ms at
the 99th percentile), and the process memory after 1 000 answers against after 10.

1. The real command, in real time: `synth live` replays 40 phrases of 4 notes with the shipped
   model into a session WAV, following the player's tempo (no --bpm: the tempo estimate is
   part of every answer's latency), and the latencies come from its --log.
2. Phrase and answer length: a session driven in this process by a virtual clock, rendering
   every block of sound and throwing it away, answers phrases of 8, 64, 256 and 500 notes
   with as many events each (--respond N), so the budget is checked at both lengths at once.
3. Memory: the same virtual clock answering 1 000 phrases.
4. The default turn-taking (phrase ends in beats, no --gap) with --midi: 1 000 phrases of 8
   notes answered on the virtual clock, the session MIDI rewritten after each answer (its time
   is not in the latency, which ends before, but it is spent in the session's loop: shown).

Every run is checked: each phrase answered, each answer complete and not cut short.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mido
import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent))

from synth.play.session_midi import SessionMidi  # noqa: E402
from synth.play.inputs import KeyEvent  # noqa: E402
from synth.play.live import LiveSettings, Session  # noqa: E402
from synth.play.outputs import NullSink, SoundOutput  # noqa: E402
from synth.learn.model import load_model  # noqa: E402

PHRASES = 40
NOTE = 0.15  # seconds per note in the replayed phrases
PAUSE = 0.6  # seconds of silence after each phrase; the gap is 0.3
LENGTHS = (8, 64, 256, 500)  # notes per phrase, and events per answer
REPEATS = {8: 200, 64: 150, 256: 100, 500: 100}  # phrases of each length


def percentiles(values):
    p = np.percentile(values, [50, 90, 99])
    return f"p50 {p[0]:.2f} ms, p90 {p[1]:.2f} ms, p99 {p[2]:.2f} ms, max {max(values):.2f} ms"


def phrase_pitches(index):
    rng = np.random.default_rng(index)
    return [int(p) for p in rng.integers(55, 72, 4)]


def replay_file(path):
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=1_000_000)])  # 1 beat = 1 s
    midi.tracks.append(track)
    wait = 0
    for index in range(PHRASES):
        for pitch in phrase_pitches(index):
            track.append(mido.Message("note_on", note=pitch, velocity=90, time=wait))
            track.append(mido.Message("note_off", note=pitch, time=round(NOTE * 0.8 * 480)))
            wait = round(NOTE * 0.2 * 480)
        wait += round(PAUSE * 480)
    midi.save(path)


def real_time_latencies():
    synth = shutil.which("synth", path=os.path.dirname(sys.executable)) or "synth"
    with tempfile.TemporaryDirectory() as tmp:
        replay_file(Path(tmp) / "phrases.mid")
        started = time.perf_counter()
        subprocess.run([synth, "live", "--input", "replay:phrases.mid", "--output",
                        "wav:session.wav", "--log", "log.jsonl", "--gap", "0.3",
                        "--seed", "1"], cwd=tmp, check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)
        took = time.perf_counter() - started
        log = [json.loads(line) for line in (Path(tmp) / "log.jsonl").read_text().splitlines()]
    # The next phrase comes 0.6 s after the last: it may cut the answer short, as it should.
    check(len(log) == PHRASES, f"the replay got {len(log)} answers, expected {PHRASES}")
    latencies = [entry["latency_ms"] for entry in log]
    tempi = sorted({round(entry["bpm"]) for entry in log})
    print(f"synth live, {len(log)} phrases replayed in real time ({took:.0f} s), shipped model, "
          f"session WAV, tempo followed ({', '.join(map(str, tempi))} bpm): latency "
          f"{percentiles(latencies)}")


def check(ok, what):
    if not ok:
        raise SystemExit(f"bench/live.py: failed: {what}")


def check_answers(session, phrases, events=None):
    """Every phrase answered, every answer played out whole (and `events` long if given)."""
    exchanges = session.exchanges
    check(len(exchanges) == phrases, f"{len(exchanges)} answers to {phrases} phrases")
    for e in exchanges:
        check(not e.interrupted and e.played == len(e.answer) > 0, "an answer was cut short")
        check(events is None or len(e.answer) == events,
              f"an answer of {len(e.answer)} events, expected {events}")


def rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def play_phrase(session, now, pitches):
    """Play `pitches` into the session on the virtual clock, then wait out the gap and the
    answer."""
    for pitch in pitches:
        for message in (mido.Message("note_on", note=pitch, velocity=90),
                        mido.Message("note_off", note=pitch)):
            session.handle(KeyEvent(now[0], message))
            now[0] += NOTE / 2
            session.tick(now[0])
    while session.current is not None or session.listener.phrase:  # the gap, the answer
        now[0] += 0.01
        session.tick(now[0])


def long_phrases(model, notes, phrases):
    now = [0.0]
    session = Session(model, SoundOutput(NullSink(), origin=0.0),
                      LiveSettings(gap=0.3, respond=notes), clock=lambda: now[0])
    rng = np.random.default_rng(notes)
    started = time.perf_counter()
    for _ in range(phrases):
        play_phrase(session, now, [int(p) for p in rng.integers(55, 72, notes)])
    session.close()
    check_answers(session, phrases, notes)
    latencies = [e.latency_ms for e in session.exchanges]
    print(f"{phrases} phrases of {notes:3d} notes, each answered with {notes} events "
          f"({time.perf_counter() - started:.0f} s): latency {percentiles(latencies)}",
          flush=True)


def memory_over_a_long_session(answers=1000):
    now = [0.0]
    sound = SoundOutput(NullSink(), origin=0.0)
    session = Session(load_model(None), sound, LiveSettings(gap=0.3), clock=lambda: now[0])
    marks = {}
    for index in range(answers):
        play_phrase(session, now, phrase_pitches(index))
        if index + 1 in (10, answers):
            marks[index + 1] = rss_mib()
    session.close()
    check_answers(session, answers)
    latencies = [e.latency_ms for e in session.exchanges]
    print(f"{answers} answers in one session (virtual clock, every block rendered): latency "
          f"{percentiles(latencies)}")
    print(f"process memory: {marks[10]:.1f} MiB after 10 answers, {marks[answers]:.1f} MiB after "
          f"{answers} ({marks[answers] - marks[10]:+.1f} MiB)")


def default_turn_taking_with_midi(model, phrases=1000, notes=8):
    now = [0.0]
    with tempfile.TemporaryDirectory() as tmp:
        duet = SessionMidi(Path(tmp) / "session.mid", 150.0)
        saves = []
        save = duet.save

        def timed_save(until=None):
            started = time.perf_counter()
            path = save(until)
            saves.append((time.perf_counter() - started) * 1000.0)
            return path

        duet.save = timed_save
        session = Session(model, SoundOutput(NullSink(), origin=0.0),
                          LiveSettings(respond=notes), clock=lambda: now[0], duet=duet)
        rng = np.random.default_rng(0)
        for _ in range(phrases):
            play_phrase(session, now, [int(p) for p in rng.integers(55, 72, notes)])
            now[0] += 2.0  # the next phrase comes well after the answer
        session.close()
        size = (Path(tmp) / "session.mid").stat().st_size
    check_answers(session, phrases, notes)
    latencies = [e.latency_ms for e in session.exchanges]
    gaps = sorted({round(e.record()["gap_beats"], 2) for e in session.exchanges})
    print(f"{phrases} phrases of {notes} notes, default turn-taking (gap {gaps} beats) and "
          f"--midi: latency {percentiles(latencies)}; saving the MIDI after each answer: "
          f"p50 {np.percentile(saves, 50):.2f} ms, p99 {np.percentile(saves, 99):.2f} ms "
          f"(first 10: {np.mean(saves[:10]):.2f} ms, last 10: {np.mean(saves[-10:]):.2f} ms), "
          f"{size / 1024:.0f} KiB")


if __name__ == "__main__":
    real_time_latencies()
    print("virtual clock, every block rendered:")
    shipped = load_model(None)
    for length in LENGTHS:
        long_phrases(shipped, length, REPEATS[length])
    memory_over_a_long_session()
    default_turn_taking_with_midi(shipped)
