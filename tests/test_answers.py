"""synth.play.answers: an answer drawn as it plays, its notes held for their lengths, and under
--overlap its bar finished (driven through a Session on a clock the test controls)."""

import numpy as np
import pytest

from synth.learn.generate import Sampling
from synth.music.events import Event as Ev, total_beats
from synth.play.answers import answer_notes
from synth.play.live import ANSWER_BEATS, LiveSettings, Session
from test_live import (D4, E4, F4, Clock, Recorder, drawn_at_once, lengths_only, lift, model,
                       play_out, play_phrase, press)


def test_an_answer_drawn_as_it_plays_is_the_answer_drawn_at_once():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.3, respond=60,
                                                    sampling=Sampling(seed=11)), clock=clock)
    exchange = play_phrase(session, clock, [0, 1, 2, 3], 120)
    play_out(session, clock)
    expected, melody, rng = drawn_at_once(exchange.phrase, 60, seed=11)
    assert exchange.answer == expected and exchange.played == 60
    assert total_beats(expected) > ANSWER_BEATS  # --respond asks for exactly that many
    # Scheduled in many parts, which add up to the notes of the whole answer.
    assert sum(call[0] == "extend" for call in output.calls) > 5
    [notes] = output.notes
    assert [(n.on, n.off, n.pitch) for n in notes] == [
        (pytest.approx(n.on), pytest.approx(n.off), n.pitch)
        for n in answer_notes(expected, exchange.bpm, 80)]
    # The melody and the random numbers are where drawing at once left them.
    assert np.allclose(session.responder.melody.h, melody.h)
    assert session.responder.rng.random() == rng.random()


def test_the_first_block_is_ready_before_the_whole_answer_is_drawn():
    clock = Clock()
    drawn_when_played = []

    class Counting(Recorder):
        def play(self, notes, start, now):
            drawn_when_played.append(len(draws))
            super().play(notes, start, now)

    session = Session(model(), Counting(), LiveSettings(gap=0.3, respond=300), clock=clock)
    draws = []
    draw = session.responder.draw
    session.responder.draw = lambda room=None: draws.append(1) or draw(room)
    exchange = play_phrase(session, clock, [0, 1, 2, 3], 120)
    [drawn] = drawn_when_played
    # Half a second from the answer's start at 120 bpm is 4 quarter beats: at most 4 events.
    assert 1 <= drawn <= 4 and len(exchange.answer) == drawn
    play_out(session, clock, step=0.02)
    assert len(draws) == len(exchange.answer) == exchange.played == 300


@pytest.mark.parametrize("quarters,notes,events", [
    ([8], 12, 8),  # two-beat notes: 8 of them fill 16 beats, the phrase's 12 would not fit
    ([4], 5, 5),  # one-beat notes: as many as the phrase had, well inside 16 beats
    ([2, 4, 8], 40, None),  # mixed: as many as fit
])
def test_the_default_answer_is_as_long_as_the_phrase_but_at_most_16_beats(quarters, notes,
                                                                           events):
    clock, output = Clock(), Recorder()
    weights = lengths_only(quarters)
    session = Session(model(weights), output, LiveSettings(gap=0.3, sampling=Sampling(seed=2)),
                      clock=clock)
    exchange = play_phrase(session, clock, list(range(notes)), 120)
    play_out(session, clock)
    answer = exchange.answer
    assert total_beats(answer) <= ANSWER_BEATS and len(answer) <= notes
    if events is not None:
        assert len(answer) == events
    else:  # the next event drawn at once (at most 2 beats) would have gone past 16 beats
        assert 1 <= len(answer) < notes and total_beats(answer) > ANSWER_BEATS - 2
    assert answer == drawn_at_once(exchange.phrase, len(answer), 2, weights)[0]


def test_answers_hold_each_note_for_its_length():
    notes = answer_notes([Ev(13, 2), Ev(0, 4), Ev(17, 4), Ev(17, 2), Ev(20, 6)], bpm=120,
                         velocity=70)
    assert [(n.on, n.off, n.pitch, n.velocity) for n in notes] == [
        (0.0, 0.25, 60, 70), (0.75, 1.25, 64, 70), (1.25, 1.5, 64, 70), (1.5, 2.25, 67, 70)]


def test_overlap_the_answer_finishes_its_bar_and_the_keys_are_the_next_call():
    clock, output = Clock(), Recorder()
    session = Session(model(lengths_only([2])), output,
                      LiveSettings(gap=0.3, respond=40, overlap=True, sampling=Sampling(seed=2)),
                      clock=clock)
    first = play_phrase(session, clock, [0, 1, 2, 3], 120)
    begin = session.origin + first.start
    # Play again 1.2 beats into the answer: it goes on to the end of its first bar (4 beats).
    clock.now = begin + 0.6
    session.tick(clock.now)
    session.handle(press(clock.now, D4))
    assert session.current is first and first.overlapped
    session.handle(lift(clock.now + 0.2, D4))
    session.handle(press(clock.now + 0.5, F4))
    session.handle(lift(clock.now + 0.7, F4))
    while session.current is first:
        clock.now += 0.005
        session.tick(clock.now)
    assert clock.now == pytest.approx(begin + 2.0, abs=0.006)  # the bar line, 4 beats in
    assert first.interrupted and first.played == 8  # eight half beats sounded
    assert ("cut", pytest.approx(begin + 2.0)) in output.calls
    assert first.record()["overlapped"]
    # The keys played during the answer are the next phrase, answered once the gap passes.
    while session.current is None:
        clock.now += 0.005
        session.tick(clock.now)
    second = session.current
    assert [e.cls for e in second.phrase if e.cls] == [15, 18]
    assert clock.now == pytest.approx(begin + 0.6 + 0.7 + 0.3, abs=0.006) or \
        clock.now >= begin + 2.0


def test_overlap_before_the_answer_begins_cuts_it():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(gap=0.3, overlap=True), clock=clock)
    exchange = play_phrase(session, clock, [0, 1, 2, 3], 60)
    session.handle(press(clock.now + 0.1, E4))
    assert exchange.interrupted and exchange.played == 0 and exchange.early
