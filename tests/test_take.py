import mido
import pytest
from hypothesis import given, settings, strategies as st

from synth.music.events import Event
from synth.music.notes import HIGHEST_MIDI, LOWEST_MIDI
from synth.play.take import Take

C4, D4, E4, F4, G4, A4, B4 = 60, 62, 64, 65, 67, 69, 71


def take(notes, bpm=60.0):
    """A take from (start, end, pitch) notes in seconds."""
    messages = []
    for start, end, pitch in notes:
        messages.append((start, mido.Message("note_on", note=pitch, velocity=80)))
        messages.append((end, mido.Message("note_off", note=pitch)))
    messages.sort(key=lambda m: (m[0], m[1].type == "note_on"))
    return Take(bpm=bpm, messages=messages, seconds=max(e for _, e, _ in notes))


def test_legato_notes_last_until_the_next_press():
    # E4 pressed while C4 is still held, G4 while E4 is: legato playing, three presses.
    events, outside = take([(0, 1.2, C4), (1, 2.3, E4), (2, 3, G4)]).events()
    assert events == [Event(13, 4), Event(17, 4), Event(20, 4)] and outside == []


def test_a_pause_of_half_a_beat_or_more_is_a_rest():
    # 120 bpm, a beat is 0.5 s: C4 held a beat then a beat of silence; E4 held 0.4 s then a
    # 0.1 s lift (articulation, not a rest); G4 held as long as it was held.
    events, _ = take([(0, 0.5, C4), (1.0, 1.4, E4), (1.5, 2.25, G4)], bpm=120).events()
    assert events == [Event(13, 4), Event(0, 4), Event(17, 4), Event(20, 6)]


@pytest.mark.parametrize("lift,events", [
    (0.45, [Event(13, 4), Event(17, 4)]),  # under half a beat: the note lasts to the next
    (0.55, [Event(13, 2), Event(0, 2), Event(17, 4)]),  # half a beat and more: a rest
])
def test_half_a_beat_of_silence_is_the_line(lift, events):
    assert take([(0, 1 - lift, C4), (1, 2, E4)]).events()[0] == events


def test_short_staccato_notes_make_rests_after_them():
    events, _ = take([(0, 0.1, C4), (1, 1.1, E4), (2, 2.1, G4)]).events()
    assert events == [Event(13, 1), Event(0, 3), Event(17, 1), Event(0, 3), Event(20, 1)]


def test_keys_struck_within_40_ms_are_one_chord_its_top_note():
    events, _ = take([(0, 1, C4), (0.015, 1, G4), (0.03, 1, E4), (1, 2, C4)], bpm=120).events()
    assert events == [Event(20, 8), Event(13, 8)]


def test_lengths_are_on_the_grid_at_the_takes_bpm():
    notes = [(0, 0.75, C4), (0.75, 1.0, E4), (1.0, 2.0, G4)]
    assert take(notes, bpm=60).events()[0] == [Event(13, 3), Event(17, 1), Event(20, 4)]
    assert take(notes, bpm=120).events()[0] == [Event(13, 6), Event(17, 2), Event(20, 8)]


def test_notes_out_of_range_are_left_out():
    events, outside = take([(0, 1, C4), (1, 2, 84), (2, 3, 40), (3, 4, G4)]).events()
    assert [n.pitch for n in outside] == [84, 40]
    assert events == [Event(13, 4), Event(0, 8), Event(20, 4)]  # their time is silence


def test_a_note_held_over_8_beats_lasts_8_then_rests():
    events, _ = take([(0, 10, C4), (10, 11, E4)]).events()
    assert events == [Event(13, 32), Event(0, 8), Event(17, 4)]


def decided_along(notes, bpm, step=0.01):
    """(time, decided events) every `step` seconds while the take is played."""
    whole = take(notes, bpm)
    out = []
    now = 0.0
    while now <= whole.seconds + 1.0:
        part = Take(bpm=bpm, messages=[(t, m) for t, m in whole.messages if t <= now])
        out.append((now, part.decided(now)))
        now += step
    return whole, out


def test_an_event_is_shown_as_soon_as_it_is_decided():
    # 60 bpm: C4 dotted quarter legato into E4 eighth, E4 let go, a beat of silence, G4.
    notes = [(0, 1.5, C4), (1.5, 1.9, E4), (3, 4, G4)]
    whole, along = decided_along(notes, 60)
    final = whole.events()[0]
    assert final == [Event(13, 6), Event(17, 2), Event(0, 4), Event(20, 4)]

    def first_time(count):
        return next(t for t, events in along if len(events) >= count)

    # C4 is decided once E4's grid point (1.5 s) has passed, not before E4 is pressed
    assert 1.5 < first_time(1) <= 1.5 + 0.25 + 0.02
    # E4 is decided half a beat after it was let go, long before G4 comes
    assert first_time(2) == pytest.approx(1.9 + 0.5, abs=0.02)
    # its rest waits for the next press
    assert 3.0 < first_time(3) <= 3.0 + 0.25 + 0.02
    assert all(events == final[: len(events)] for _, events in along)


def test_a_key_on_the_same_grid_point_moves_the_note_before_back_before_it_is_shown():
    # Two quick presses 0.1 beat apart land on one quarter-beat point: the later keeps it,
    # the earlier moves back a point, C4 giving up a quarter beat for it.
    notes = [(0, 1, C4), (1.0, 1.1, E4), (1.1, 2, G4), (2, 3, C4)]
    whole, along = decided_along(notes, 60)
    final = whole.events()[0]
    assert final == [Event(13, 3), Event(17, 1), Event(20, 4), Event(13, 4)]
    assert whole.merged() == []
    assert all(events == final[: len(events)] for _, events in along)


def test_fast_notes_are_kept_where_the_grid_has_room_and_merged_and_named_where_not():
    # The take: seven eighth notes at 480 bpm (0.0625 s apart) recorded at 150 bpm,
    # 0.625 of a quarter beat apart: 0, 0.625, 1.25, 1.875, 2.5, 3.125, 3.75 -> points
    # 0, 1, 1, 2, 3, 3, 4. D4 has no point free before E4's (C4 holds it), nor G4 before
    # A4's (F4 holds it): those two are merged, the rest kept, each a quarter beat.
    scale = [C4, D4, E4, F4, G4, A4, B4]
    whole = take([(i * 0.0625, (i + 1) * 0.0625, p) for i, p in enumerate(scale)], bpm=150)
    reading = whole.reading()
    assert reading.events == [Event(13, 1), Event(17, 1), Event(18, 1), Event(22, 1),
                              Event(24, 1)]
    assert [n.pitch for n in reading.merged] == [D4, G4]
    assert len(reading.events) + len(reading.merged) == len(scale)  # none vanishes unnamed
    # Where there is room, the earlier of two notes on one point moves back: a pair played
    # a tenth of a beat apart after a long note keeps both.
    pair = take([(0, 1, C4), (1.0, 1.04, E4), (1.04, 2, G4)], bpm=60).reading()
    assert pair.events == [Event(13, 3), Event(17, 1), Event(20, 4)] and pair.merged == []


def test_the_merged_notes_are_named_in_one_line():
    from synth.music.midi import Note
    from synth.play.take import merged_names, merged_warning

    notes = merged_names([Note(0, 1, D4), Note(1, 2, F4), Note(2, 3, A4)])
    assert notes == ["D4", "F4", "A4"]
    assert merged_warning(notes, 150, "record at a slower --bpm to keep them") == \
        "3 notes faster than a quarter beat at 150 bpm were merged: D4 F4 A4; record at a " \
        "slower --bpm to keep them"
    assert merged_warning(notes[:1], 97.4, "play slower").startswith(
        "1 note faster than a quarter beat at 97 bpm was merged: D4;")


def test_what_was_merged_so_far_stays_merged():
    scale = [C4, D4, E4, F4, G4, A4, B4]
    whole = take([(i * 0.0625, (i + 1) * 0.0625, p) for i, p in enumerate(scale)], bpm=150)
    seen = []
    for now in [i * 0.01 for i in range(60)]:
        part = Take(bpm=150, messages=[(t, m) for t, m in whole.messages if t <= now])
        merged = part.merged(now)
        assert merged[: len(seen)] == seen
        seen = merged
    assert seen == whole.merged()


@pytest.mark.parametrize("notes,final", [
    # E4 comes 0.45 beat after C4 is let go (legato), then G4 on E4's grid point: E4 moves
    # back a point, C4 still lasting to it
    ([(0, 0.6, C4), (1.05, 1.1, E4), (1.12, 2, G4), (2, 3, C4)],
     [Event(13, 3), Event(17, 1), Event(20, 4), Event(13, 4)]),
    # D4 on the point before E4's: no room, so G4 on E4's point merges E4, D4 lasting to G4
    ([(0, 0.6, C4), (0.75, 0.8, D4), (1.0, 1.1, E4), (1.1, 2, G4), (2, 3, C4)],
     [Event(13, 3), Event(15, 1), Event(20, 4), Event(13, 4)]),
    # E4 comes just under half a beat after C4 is let go, just before C4 would be decided as
    # held: C4 lasts to E4
    ([(0, 0.5, C4), (0.95, 2, E4)], [Event(13, 4), Event(17, 4)]),
])
def test_nothing_shown_is_taken_back(notes, final):
    whole, along = decided_along(notes, 60, step=0.005)
    assert whole.events()[0] == final
    assert all(events == final[: len(events)] for _, events in along)


played = st.lists(st.tuples(st.floats(0.0, 1.5), st.floats(0.01, 2.0),
                            st.integers(LOWEST_MIDI - 3, HIGHEST_MIDI + 3)),
                  min_size=1, max_size=12)


@given(played, st.sampled_from([60, 97, 150, 240]))
@settings(max_examples=60, deadline=None)
def test_what_is_shown_is_always_the_start_of_the_saved_song(gaps, bpm):
    notes, now = [], 0.0
    for gap, held, pitch in gaps:
        now += gap
        notes.append((now, now + held, pitch))
    whole, along = decided_along(notes, bpm, step=0.05)
    final = whole.events()[0]
    for _, events in along:
        assert events == final[: len(events)]
