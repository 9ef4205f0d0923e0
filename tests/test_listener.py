"""synth.play.listener: the phrase as one line, its tempo, and its reading heard during the gap
(driven through a Session on a clock the test controls)."""

import numpy as np
import pytest

from synth.learn.generate import Sampling
from synth.music.notes import midi_name
from synth.music.songs import DEFAULT_BPM
from synth.play.live import LiveSettings, Session
from test_live import (C4, D4, E4, F4, G4, Clock, Recorder, drawn_at_once, lift, model, play_out,
                       play_phrase, press)


def test_too_few_notes_take_the_previous_tempo_or_the_default():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.3, interrupt=False), clock=clock)
    first = play_phrase(session, clock, [0, 1], 100)
    assert first.bpm == DEFAULT_BPM and first.bpm_from == "default"
    play_out(session, clock)
    second = play_phrase(session, clock, [0, 1, 2, 3], 100, start=clock.now + 1)
    assert second.bpm == pytest.approx(100) and second.bpm_from == "phrase"
    play_out(session, clock)
    onset = clock.now + 1
    third = play_phrase(session, clock, [0], 100, start=onset)
    assert third.bpm == pytest.approx(100) and third.bpm_from == "previous"
    # One note starts the grid: the answer comes on a beat of that tempo after it.
    beats = (third.start - onset) / 0.6
    assert beats == pytest.approx(round(beats)) and beats >= 1


def test_the_phrase_is_heard_during_the_gap_and_forgotten_if_it_goes_on():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.4, respond=6,
                                                    sampling=Sampling(seed=3)), clock=clock)
    heard = []
    hear = session.responder.hear
    session.responder.hear = lambda events: heard.append(len(events)) or hear(events)
    for t, pitch in ((0.0, C4), (0.5, E4), (1.0, G4)):
        session.handle(press(t, pitch))
        session.handle(lift(t + 0.4, pitch))
    clock.now = 1.4 + 0.25  # past half the gap: the phrase is read and fed, not answered
    session.tick(clock.now)
    assert sum(heard) == 3 and session.current is None
    session.handle(press(1.7, D4))  # the phrase goes on
    session.handle(lift(2.1, D4))
    clock.now = 2.1 + 0.4 + 0.001
    session.tick(clock.now)
    exchange = session.current
    assert [e.cls for e in exchange.phrase] == [13, 17, 20, 0, 15]  # 0.3 s silence: a rest
    assert sum(heard) == 3 + 5
    play_out(session, clock)
    # The melody heard the whole phrase once: the first reading was undone.
    expected, melody, _ = drawn_at_once(exchange.phrase, 6, seed=3)
    assert exchange.answer == expected
    assert np.allclose(session.responder.melody.h, melody.h)


def test_a_note_begun_under_a_higher_note_held_is_left_out_and_a_chord_is_its_top():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.3, bpm=120), clock=clock)
    C3, B4 = 48, 71
    for event in [
        press(0.0, G4), press(0.01, C4), press(0.03, E4),  # a chord: G4 on top
        press(0.25, C3), lift(0.4, C3),  # under G4, still held: left out
        press(0.5, E4 - 1), lift(0.6, E4 - 1),  # under G4 too
        lift(0.9, C4), lift(0.9, E4), lift(0.9, G4),
        press(1.0, D4), lift(1.4, D4),  # nothing held above: kept
        press(1.5, C3),  # a low note, then a melody note above it while it is held: both kept
        press(1.75, F4), lift(1.9, F4),
        press(2.0, B4), press(2.25, E4), lift(2.4, E4), lift(2.5, B4),  # E4 under B4: out
        lift(2.5, C3),
    ]:
        session.handle(event)
    clock.now = 2.5 + 0.3 + 0.001
    session.tick(clock.now)
    exchange = session.current
    assert [e.cls for e in exchange.phrase if e.cls] == [20, 15, 1, 18, 24]
    assert exchange.under == 3 and exchange.record()["under"] == 3
    # The player still hears every key they pressed.
    assert sum(call[0] == "down" for call in output.calls) == 10


def test_notes_too_fast_for_the_grid_are_kept_where_there_is_room_and_named_where_not():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.3, bpm=120), clock=clock)
    # 120 bpm, an eighth of a second a quarter beat: D4, E4, F4 and A4 within 0.15 s
    pitches = [C4, D4, E4, F4, 69, G4]
    times = [0.0, 0.5, 0.55, 0.6, 0.65, 1.0]
    for t, pitch in zip(times, pitches):
        session.handle(press(t, pitch))
        session.handle(lift(t + 0.015, pitch))
    clock.now = 1.015 + 0.3 + 0.001
    session.tick(clock.now)
    exchange = session.current
    kept = [e.cls + 47 for e in exchange.phrase if e.cls]
    assert 1 <= len(exchange.merged) and len(kept) + len(exchange.merged) == len(pitches)
    assert exchange.merged == [midi_name(p) for p in pitches if p not in kept]
    assert exchange.record()["merged"] == exchange.merged  # and in the --log line
