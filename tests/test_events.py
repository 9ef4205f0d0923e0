"""synth/music/events.py: the Event type, lengths written and read, the grid, the encoder."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from synth.errors import SynthError
from synth.music.events import (BEAT, MAX_QUARTERS, Event, check_event, encode, even, event_name,
                          events_of, events_to_names, format_event, format_length, parse_events,
                          parse_length, rests, starts, to_grid, total_beats)

events_st = st.lists(st.builds(Event, st.integers(0, 24), st.integers(1, MAX_QUARTERS)),
                     min_size=1, max_size=40)


def test_a_plain_event_lasts_one_beat():
    assert Event(13) == Event(13, 4) and Event(13).beats == 1.0
    assert Event(0, 2).is_rest and not Event(13).is_rest
    assert str(Event(13)) == "13" and str(Event(13, 6)) == "13:1.5" and str(Event(0, 8)) == "0:2"


@pytest.mark.parametrize("text,quarters", [("1", 4), ("2", 8), ("0.5", 2), (".75", 3),
                                           ("1.5", 6), ("3/2", 6), ("1/4", 1), ("8", 32),
                                           ("0.25", 1), ("16/2", 32), ("2.", 8), (" 2 ", 8)])
def test_lengths_are_read_in_beats(text, quarters):
    assert parse_length(text) == quarters


@pytest.mark.parametrize("text,why", [
    ("0", "out of range"), ("8.25", "out of range"), ("9", "out of range"), ("0/4", "out of range"),
    ("0.3", "not a multiple of 1/4 beat"), ("1/3", "not a multiple of 1/4 beat"),
    ("0.125", "not a multiple of 1/4 beat"),
    ("", "not a number of beats"), ("-1", "not a number of beats"), ("x", "not a number"),
    ("1e1", "not a number"), ("3/0", "not a number"), ("½", "not a number"), ("nan", "not a"),
    ("inf", "not a number"), ("1/2/3", "not a number"),
])
def test_bad_lengths_say_the_value_and_what_was_expected(text, why):
    with pytest.raises(SynthError) as caught:
        parse_length(text)
    message = str(caught.value)
    assert why in message and "expected a multiple of 1/4 beat from 1/4 to 8" in message
    assert text.strip() in message


@pytest.mark.parametrize("quarters", range(1, MAX_QUARTERS + 1))
def test_every_length_is_written_so_it_reads_back(quarters):
    assert parse_length(format_length(quarters)) == quarters
    assert "/" not in format_length(quarters) and "e" not in format_length(quarters)


def test_one_beat_is_written_without_a_length():
    assert format_event(Event(13, BEAT)) == "13"
    assert format_event(Event(0, 1)) == "0:0.25"
    assert format_event(Event(24, 32)) == "24:8"


@pytest.mark.parametrize("bad,what", [((25, 4), "class 25"), ((-1, 4), "class -1"),
                                      ((13, 0), "length 0"), ((13, 33), "length 33"),
                                      ((13, 1.5), "length 1.5"), (("13", 4), "class '13'"),
                                      (13, "is not an event"), ((13, 4, 1), "is not an event")])
def test_check_event_refuses_what_is_not_an_event(bad, what):
    with pytest.raises(SynthError, match="" if what is None else what.replace("(", r"\(")):
        check_event(bad)


def test_check_event_accepts_numpy_integers():
    assert check_event((np.int64(13), np.int32(6))) == Event(13, 6)
    assert type(check_event((np.int64(13), np.int32(6))).cls) is int


def test_starts_add_up_the_lengths_before():
    events = [Event(13, 6), Event(15, 2), Event(0, 4), Event(17, 8)]
    assert starts(events) == [0, 6, 8, 12]
    assert total_beats(events) == 5.0
    assert starts([]) == [] and total_beats([]) == 0


@pytest.mark.parametrize("beats,quarter", [(0, 0), (0.12, 0), (0.125, 1), (0.13, 1), (0.374, 1),
                                           (0.375, 2), (1.0, 4), (2.9, 12), (-0.1, 0)])
def test_to_grid_takes_the_nearest_quarter_beat(beats, quarter):
    assert to_grid(beats) == quarter


@pytest.mark.parametrize("quarters,lengths", [(0, []), (-3, []), (1, [1]), (32, [32]),
                                              (33, [32, 1]), (70, [32, 32, 6])])
def test_long_silences_are_several_rests_of_at_most_8_beats(quarters, lengths):
    assert rests(quarters) == [Event(0, q) for q in lengths]


def test_plain_classes_become_one_beat_events_and_back():
    assert events_of([13, 0, 17]) == [Event(13, 4), Event(0, 4), Event(17, 4)]
    assert events_of([13], quarters=2) == [Event(13, 2)]
    assert even([Event(13, 6), Event(0, 2)]) == [Event(13, 4), Event(0, 4)]


@given(events_st)
def test_encode_gives_classes_and_length_classes(events):
    cls, lengths = encode(events)
    assert cls.dtype == np.int32 and lengths.dtype == np.int32
    assert lengths.min() >= 0 and lengths.max() < MAX_QUARTERS
    assert [Event(int(c), int(q) + 1) for c, q in zip(cls, lengths)] == events


@pytest.mark.parametrize("text,events", [
    ("C4:1.5 D4:0.5 E4:2", [Event(13, 6), Event(15, 2), Event(17, 8)]),
    ("13 15:2 - 17", [Event(13), Event(15, 8), Event(0), Event(17)]),
    ("c4, -:0.5,rest:3/2", [Event(13), Event(0, 2), Event(0, 6)]),
])
def test_primers_carry_lengths(text, events):
    assert parse_events(text) == events


@pytest.mark.parametrize("text,what", [("C4:0.3", "not a multiple of 1/4"), ("C4:", "length"),
                                       ("C4:9", "out of range"), ("H4:1", "not a note name"),
                                       ("", "empty"), ("C5:1", "outside C3-B4")])
def test_bad_primers_are_errors(text, what):
    with pytest.raises(SynthError, match=what):
        parse_events(text)


def test_names_show_lengths_but_not_one_beat():
    assert event_name(Event(13)) == "C4"
    assert event_name(Event(13, 6)) == "C4:1.5"
    assert event_name(Event(0, 8)) == "-:2"
    assert events_to_names([Event(13, 6), Event(0, 2), Event(24)]) == "C4:1.5 -:0.5 B4"


@given(events_st)
def test_names_round_trip_any_song(events):
    assert parse_events(events_to_names(events)) == events
