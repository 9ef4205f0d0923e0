"""synth.play.phrase_end: a phrase ends after a gap in beats at the player's tempo, with no key
held, and the gap learns the rests left inside phrases (driven through a Session on a clock the
test controls)."""

import pytest

from synth.learn.generate import Sampling
from synth.music.events import Event as Ev
from synth.play.live import LiveSettings, Session
from test_live import (C4, D4, E4, F4, G4, RESTED, SPACING, Clock, Recorder, lengths_only, lift,
                       model, play_out, press, rested_phrase)


def play_notes(session, clock, notes, bpm, start=0.0):
    """Play (start_beat, end_beat, pitch) notes into the session, ticking the clock through
    every silence (as the session's loop does); returns the clock times of the phrase ends
    decided on the way (the times `respond` ran)."""
    period = 60.0 / bpm
    keys = sorted([(start + b * period, 1, press, p) for b, _, p in notes] +
                  [(start + e * period, 0, lift, p) for _, e, p in notes])
    ends = []
    for t, _, make, pitch in keys:
        while clock.now + 0.005 < t:
            clock.now += 0.005
            answered = len(session.exchanges) + (session.current is not None)
            session.tick(clock.now)
            if len(session.exchanges) + (session.current is not None) > answered:
                ends.append(clock.now)
        clock.now = t
        session.handle(make(t, pitch))
        session.tick(t)
    return ends


def wait(session, clock, seconds):
    """Tick the clock on `seconds`; returns the phrase ends decided on the way."""
    ends = []
    until = clock.now + seconds
    while clock.now < until:
        clock.now += 0.005
        answered = len(session.exchanges) + (session.current is not None)
        session.tick(clock.now)
        if len(session.exchanges) + (session.current is not None) > answered:
            ends.append(clock.now)
    return ends


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
    # At 120 bpm a quarter beat is 0.125 s: C4 lasts until E4 (3 quarters), E4 is held 0.9 s.
    exchange = session.current
    assert exchange.phrase == [Ev(13, 3), Ev(17, 7)]
    # The grid runs through the two onsets (0.0 and 0.4 s: 3.2 quarters apart) in the middle:
    # beats at 0.0125 + k * 0.5 s, and the answer starts on the first after the phrase end.
    assert output.calls[-1][0] == "play" and output.calls[-1][2:] == (pytest.approx(2.0125), 1.8)
    assert session.current.start == pytest.approx(2.0125) and session.current.bpm == 120
    play_out(session, clock)
    assert len(exchange.answer) == 2  # as many events as the phrase


@pytest.mark.parametrize("bpm", [80, 120, 160])
def test_rests_inside_a_phrase_do_not_end_it_and_the_answer_comes_on_the_next_beat(bpm):
    clock, output = Clock(), Recorder()
    session = Session(model(lengths_only([2, 4])), output,
                      LiveSettings(respond=4, sampling=Sampling(seed=1)), clock=clock)
    period = 60.0 / bpm
    notes = rested_phrase() + rested_phrase(SPACING) + rested_phrase(2 * SPACING, last=0.9)
    ends = play_notes(session, clock, notes, bpm, start=0.5)
    ends += wait(session, clock, 20 * period)
    log = [e.record() for e in session.exchanges]
    assert len(log) == 3 and len(ends) == 3  # one end per phrase, no false ends
    for entry, end in zip(log, [10.3, SPACING + 10.3, 2 * SPACING + 9.9]):
        assert entry["phrase"] == RESTED
        # The phrase ended 1.5 beats after its last key came up (the one-beat rests, 1.1
        # beats of silence, never did), and the answer came on the next beat after that.
        release = 0.5 + end * period
        assert entry["release"] == pytest.approx(release, abs=0.001)
        assert entry["gap_beats"] == pytest.approx(1.5, abs=0.05)
        assert entry["time"] == pytest.approx(release + 1.5 * period, abs=0.006)
        beat = (entry["start"] - 0.5) / period
        assert beat == pytest.approx(round(beat), abs=0.01)
        assert entry["time"] < entry["start"] < entry["time"] + period + 0.001
        assert not entry["early"] and not entry["interrupted"]
    # Released a third of a beat after a beat: the answer enters 1.7 beats later; released
    # just before a beat (0.9 of the way), 2.1 beats later: the beat at 1.6 beats is taken.
    assert [e["delay_beats"] for e in log] == pytest.approx([1.7, 1.7, 2.1], abs=0.03)
    # The first phrase's gap was in beats as soon as three notes gave its tempo.
    assert log[0]["bpm_from"] == "phrase" and log[0]["bpm"] == pytest.approx(bpm, rel=0.01)


def test_before_three_notes_the_gap_is_in_seconds_and_gap_wins_over_beats():
    clock, output = Clock(), Recorder()
    session = Session(model(), output, LiveSettings(), clock=clock)
    assert session.gap() == 0.8  # nothing known yet
    play_notes(session, clock, [(0, 0.9, C4), (1, 1.9, E4)], 60)
    assert session.gap() == pytest.approx(0.8)  # two notes: no tempo yet, still 0.8 s
    # At 60 bpm the seconds rule ends the phrase 0.8 s after its last key up.
    ends = wait(session, clock, 1.0)
    assert ends == [pytest.approx(1.9 + 0.8, abs=0.006)]
    fixed = Session(model(), Recorder(), LiveSettings(gap=0.4, gap_beats=3), clock=clock)
    assert fixed.gap() == 0.4
    beats = Session(model(), Recorder(), LiveSettings(bpm=100, gap_beats=2), clock=clock)
    assert beats.gap() == pytest.approx(1.2)


def test_a_long_rest_that_ended_a_phrase_early_is_learned():
    clock, output = Clock(), Recorder()
    session = Session(model(lengths_only([4])), output,
                      LiveSettings(bpm=120, respond=1, sampling=Sampling(seed=1)), clock=clock)
    # Three notes, then a two-beat rest (2.1 beats of silence): the phrase ends after 1.5
    # beats, and the player goes on half a beat later: an early end.
    ends = play_notes(session, clock, [(0, 0.9, C4), (1, 1.9, D4), (2, 2.9, E4),
                                       (5, 5.9, F4), (6, 6.9, G4)], 120)
    assert len(ends) == 1
    early = session.exchanges[0] if session.exchanges else session.current
    assert early.early and early.record()["early"]
    assert session.phrase_end.rest_beats == pytest.approx(2.1, abs=0.01)
    wait(session, clock, 5.0)
    # Now a phrase ends only after 1.3 x 2.1 = 2.73 beats of silence: a two-beat rest is
    # part of the phrase.
    start = clock.now
    ends = play_notes(session, clock, [(0, 0.9, C4), (1, 1.9, D4), (2, 2.9, E4),
                                       (5, 5.9, F4)], 120, start=start)
    ends += wait(session, clock, 3.0)
    assert ends == [pytest.approx(start + (5.9 + 2.73) * 0.5, abs=0.01)]
    last = session.exchanges[-1]
    assert [e.cls for e in last.phrase] == [13, 15, 17, 0, 18] and not last.early
    assert last.record()["gap_beats"] == pytest.approx(2.73, abs=0.01)
