import pytest
from hypothesis import given, strategies as st

from synth.errors import SynthError
from synth.music.events import events_of, events_to_names, parse_events
from synth.music.notes import class_name, class_to_midi, midi_to_class, parse_note_name, parse_token


def test_fixed_points_of_the_vocabulary():
    assert class_to_midi(1) == 48 and class_name(1) == "C3"
    assert class_to_midi(13) == 60 and class_name(13) == "C4"
    assert class_to_midi(24) == 71 and class_name(24) == "B4"
    assert class_name(0) == "-"


@pytest.mark.parametrize("token", range(1, 25))
def test_class_name_midi_round_trip(token):
    assert midi_to_class(class_to_midi(token)) == token
    assert parse_token(class_name(token)) == token


@pytest.mark.parametrize("sharp,flat", [("C#3", "Db3"), ("D#3", "Eb3"), ("F#4", "Gb4"),
                                        ("G#4", "Ab4"), ("A#4", "Bb4")])
def test_sharps_and_flats_name_the_same_class(sharp, flat):
    assert parse_token(sharp) == parse_token(flat)


def test_c_sharp_3_is_class_2_and_enharmonics_cross_octaves():
    assert parse_token("C#3") == 2 == parse_token("Db3")
    assert parse_note_name("B#3") == 60 and parse_note_name("Cb4") == 59


@pytest.mark.parametrize("word,expected", [("0", 0), ("24", 24), ("-", 0), ("rest", 0),
                                           ("c4", 13), ("13", 13)])
def test_primer_words(word, expected):
    assert parse_token(word) == expected


@pytest.mark.parametrize("word", ["25", "-1", "H4", "C", "B2", "C5", "C#", "4C", "", "²", "C²"])
def test_bad_primer_words_are_errors(word):
    with pytest.raises(SynthError):
        parse_token(word)


def test_primers_mix_names_and_classes():
    assert parse_events("C4 E4, G4 0 20") == events_of([13, 17, 20, 0, 20])
    with pytest.raises(SynthError, match="empty"):
        parse_events("  ,")


@pytest.mark.parametrize("midi", [47, 72, 0, 127])
def test_midi_outside_range_is_an_error(midi):
    with pytest.raises(SynthError, match="outside C3-B4"):
        midi_to_class(midi)


@given(st.lists(st.integers(0, 24), min_size=1, max_size=50))
def test_names_round_trip_any_song(tokens):
    assert parse_events(events_to_names(events_of(tokens))) == events_of(tokens)


@given(st.text(max_size=30))
def test_parse_events_never_crashes(text):
    try:
        events = parse_events(text)
    except SynthError:
        return
    assert all(0 <= e.cls <= 24 and 1 <= e.quarters <= 32 for e in events)
