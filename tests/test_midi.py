from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import make_midi
from synth.errors import SynthError
from synth.music.events import MAX_QUARTERS, Event, events_of, rests
from synth.music.midi import (TICKS_PER_BEAT, ImportReport, Note, chords_to_top, events_to_midi,
                        find_midi_files, import_midi, line_events, melody_line, played_line,
                        write_midi)

C4, E4, G4, C5 = 60, 64, 67, 72


def scale(pitches, step=1.0, length=1.0, start=0.0):
    return [(start + i * step, start + i * step + length, p) for i, p in enumerate(pitches)]


def test_a_plain_melody_in_range_keeps_its_classes(tmp_path):
    path = make_midi(tmp_path / "m.mid", [scale([C4, E4, G4])])
    song, report = import_midi(path)
    assert song.events == events_of([13, 17, 20])
    assert (report.kept, report.folded, report.dropped, report.rests, report.octaves) == \
        (3, 0, 0, 0, 0)
    assert (report.moved, report.clamped) == (0, 0)
    assert song.bpm == 120


def test_overlapping_notes_keep_the_highest(tmp_path):
    chord_then_line = [(0, 1, C4), (0, 1, E4), (0, 1, G4),  # chord: G4 wins
                       (1, 3, C5 - 1),  # B4 held ...
                       (1.5, 2, C4),  # ... a lower note under it is dropped
                       (2, 3, C5 - 12)]  # C4 under the held B4 is dropped too
    song, report = import_midi(make_midi(tmp_path / "m.mid", [chord_then_line]))
    assert song.events == [Event(20, 4), Event(24, 8)]
    assert report.dropped == 4


def test_a_higher_note_cuts_a_lower_one_short(tmp_path):
    song, _ = import_midi(make_midi(tmp_path / "m.mid", [[(0, 4, C4), (1, 2, G4)]]))
    assert song.events == [Event(13, 4), Event(20, 4)]


def test_melody_out_of_range_is_shifted_by_octaves_and_strays_folded(tmp_path):
    high = [84, 88, 91, 120]  # C6 E6 G6 C8: -2 and -3 octaves both fit three; the smaller wins
    song, report = import_midi(make_midi(tmp_path / "m.mid", [scale(high)]))
    assert report.octaves == -2
    assert song.classes == [13, 17, 20, 13]
    assert report.folded == 1


def test_low_melody_moves_up(tmp_path):
    song, report = import_midi(make_midi(tmp_path / "m.mid", [scale([36, 40, 43])]))
    assert report.octaves == 1 and song.classes == [1, 5, 8]


def test_silences_become_rests_on_the_quarter_beat_grid(tmp_path):
    notes = [(0, 1, C4), (2, 3, E4), (3.3, 4, G4), (6.9, 7.5, C4)]
    song, report = import_midi(make_midi(tmp_path / "m.mid", [notes]))
    # 1 beat of silence; 0.3 beat -> a quarter-beat rest; G4 held 0.7 -> 0.75, then 2.9 beats
    # of silence; the last C4 held 0.6 -> 0.5
    assert song.events == [Event(13, 4), Event(0, 4), Event(17, 4), Event(0, 1), Event(20, 3),
                           Event(0, 12), Event(13, 2)]
    assert report.rests == 3
    assert report.moved == 2  # G4 and the last C4 changed length; E4's 1 beat did not


def test_notes_let_go_a_little_early_keep_their_written_length(tmp_path):
    # Played detached by less than half a grid step (1/8 beat): still the written lengths.
    written = [(0, 1.5, C4), (1.5, 2, E4), (2, 4, G4), (4, 4.5, C4)]
    played = [(start, end - 0.1, pitch) for start, end, pitch in written]
    song, _ = import_midi(make_midi(tmp_path / "m.mid", [played]))
    assert song.events == [Event(13, 6), Event(17, 2), Event(20, 8), Event(13, 2)]


def test_tempo_changes_keep_rests_in_beats(tmp_path):
    notes = [(0, 1, C4), (2, 3, E4), (4, 5, G4)]
    path = make_midi(tmp_path / "m.mid", [notes], tempos=[(0, 100), (1.5, 200)])
    song, _ = import_midi(path)
    assert song.events == [Event(13), Event(0), Event(17), Event(0), Event(20)]
    assert song.bpm == 100


@pytest.mark.parametrize("tpb", [96, 480, 1024])
@pytest.mark.parametrize("bpm", [45, 120, 300])
def test_lengths_are_in_the_files_own_beats_whatever_its_tempo_and_resolution(tmp_path, tpb,
                                                                              bpm):
    notes = [(0, 1.5, C4), (1.5, 2, E4), (2, 2.25, G4), (2.25, 3, E4), (4, 8, C4)]
    path = make_midi(tmp_path / "m.mid", [notes], tpb=tpb, tempos=[(0, bpm)])
    song, report = import_midi(path)
    assert song.events == [Event(13, 6), Event(17, 2), Event(20, 1), Event(17, 3), Event(0, 4),
                           Event(13, 16)]
    assert song.bpm == bpm and report.moved == 0


@pytest.mark.parametrize("kind", [0, 1])
def test_several_tracks_in_type_0_and_type_1_files(tmp_path, kind):
    melody = scale([G4, G4 + 2, G4 + 4])
    bass = scale([36, 38, 40])
    path = make_midi(tmp_path / "m.mid", [melody, bass], type=kind)
    song, report = import_midi(path)
    assert mido.MidiFile(path).type == kind
    assert song.classes == [20, 22, 24]
    assert report.dropped == 3


def test_drums_are_ignored(tmp_path):
    path = make_midi(tmp_path / "m.mid", [scale([C4 + 20, C4 + 22])], channel=9)
    with pytest.raises(SynthError, match="holds no notes"):
        import_midi(path)


def test_unreleased_notes_end_with_their_track(tmp_path):
    midi = mido.MidiFile()
    track = mido.MidiTrack([mido.Message("note_on", note=C4, velocity=80, time=0),
                            mido.Message("note_on", note=E4, velocity=80, time=480)])
    midi.tracks.append(track)
    midi.save(tmp_path / "m.mid")
    # E4 is never let go and the track ends as it starts: the shortest length
    assert import_midi(tmp_path / "m.mid")[0].events == [Event(13, 4), Event(17, 1)]
    track.append(mido.MetaMessage("end_of_track", time=960))
    midi.save(tmp_path / "m.mid")
    assert import_midi(tmp_path / "m.mid")[0].events == [Event(13, 4), Event(17, 8)]


@pytest.mark.parametrize("data", [b"", b"MThd", b"not a midi file at all", b"MThd\x00\x00\x00\x06"
                                  b"\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x10\x00\x90"])
def test_corrupt_files_are_clear_errors(tmp_path, data):
    path = tmp_path / "bad.mid"
    path.write_bytes(data)
    with pytest.raises(SynthError, match=r"bad.mid: (not a readable MIDI file|holds no notes)"):
        import_midi(path)


def test_empty_midi_file_is_an_error(tmp_path):
    with pytest.raises(SynthError, match="holds no notes"):
        import_midi(make_midi(tmp_path / "e.mid", [[]]))


def test_export_then_import_gives_back_the_events(tmp_path):
    events = [Event(13, 6), Event(0, 2), Event(17, 2), Event(20, 1), Event(20, 3), Event(0, 4),
              Event(0, 1), Event(1, 32), Event(24, 8), Event(5, 4)]
    write_midi(tmp_path / "x.mid", events_to_midi(events, bpm=90))
    song, report = import_midi(tmp_path / "x.mid")
    merged = events[:5] + [Event(0, 5)] + events[7:]  # two rests in a row are one silence
    assert song.events == merged and song.bpm == 90
    assert (report.moved, report.clamped, report.dropped) == (0, 0, 0)


def test_exported_notes_are_released_after_their_length():
    events = [Event(13, 6), Event(0, 2), Event(17, 1), Event(17, 3), Event(24, 32)]
    midi = events_to_midi(events, bpm=100, velocities=[70, 0, 80, 90, 100])
    tick, seen = 0, []
    for msg in midi.tracks[0]:
        tick += msg.time
        if msg.type in ("note_on", "note_off"):
            seen.append((msg.type, msg.note, tick, msg.velocity))
    q = TICKS_PER_BEAT // 4
    assert seen == [("note_on", 60, 0, 70), ("note_off", 60, 6 * q, 0),
                    ("note_on", 64, 8 * q, 80), ("note_off", 64, 9 * q, 0),
                    ("note_on", 64, 9 * q, 90), ("note_off", 64, 12 * q, 0),
                    ("note_on", 71, 12 * q, 100), ("note_off", 71, 44 * q, 0)]
    assert tick == 44 * q  # the file lasts as long as the song
    assert midi.tracks[0][0].tempo == mido.bpm2tempo(100)


def test_a_song_ending_in_a_rest_lasts_to_its_end():
    midi = events_to_midi([Event(13, 4), Event(0, 8)], bpm=120)
    assert sum(msg.time for msg in midi.tracks[0]) == 3 * TICKS_PER_BEAT


def test_a_long_note_is_held_8_beats_and_the_rest_is_silence(tmp_path):
    notes = [(0, 10, C4), (12, 13, E4), (13, 23, G4)]  # 10 beats, 2 of silence, ...
    song, report = import_midi(make_midi(tmp_path / "m.mid", [notes]))
    assert song.events == [Event(13, 32), Event(0, 16), Event(17, 4), Event(20, 32),
                           Event(0, 8)]
    assert report.clamped == 2 and report.moved == 0


def test_quantised_lengths_are_counted_as_moved(tmp_path):
    notes = [(0, 0.9, C4), (0.9, 2, E4), (2, 3.05, G4), (3.05, 4.4, C4)]
    song, report = import_midi(make_midi(tmp_path / "m.mid", [notes]))
    assert song.events == [Event(13, 4), Event(17, 4), Event(20, 4), Event(13, 6)]
    assert report.moved == 4 and report.clamped == 0


def canonical_songs():
    """Songs as an import gives them back: notes, each maybe followed by a silence (written as
    rests of at most 8 beats), starting and ending with a note."""
    note = st.builds(Event, st.integers(1, 24), st.integers(1, MAX_QUARTERS))
    silence = st.one_of(st.just(0), st.integers(1, 3 * MAX_QUARTERS))

    def song(parts):
        events = []
        for index, (event, quiet) in enumerate(parts):
            events.append(event)
            if index + 1 < len(parts):
                events.extend(rests(quiet))
        return events

    return st.lists(st.tuples(note, silence), min_size=1, max_size=30).map(song)


@given(canonical_songs(), st.sampled_from([40, 90, 150, 233, 400]))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60,
          deadline=None)
def test_export_import_round_trip_any_song(tmp_path, events, bpm):
    write_midi(tmp_path / "x.mid", events_to_midi(events, bpm=bpm))
    song, report = import_midi(tmp_path / "x.mid")
    assert song.events == events
    assert (report.moved, report.clamped, report.dropped, report.folded) == (0, 0, 0, 0)


# --- the one rule for a line of notes, shared by import and record ------------------------


def test_line_events_legato_and_detached():
    line = [Note(0, 0.4, 60), Note(1, 1.9, 64), Note(2, 2.2, 67), Note(3.5, 4, 60)]
    # import (min_rest 0): every silence of a grid step is a rest
    assert line_events(line, shift=False) == [Event(13, 2), Event(0, 2), Event(17, 4),
                                              Event(20, 1), Event(0, 5), Event(13, 2)]
    # record (min_rest half a beat): shorter silences are articulation, the note lasts on
    assert line_events(line, shift=False, min_rest=0.5) == [
        Event(13, 2), Event(0, 2), Event(17, 4), Event(20, 1), Event(0, 5), Event(13, 2)]
    short = [Note(0, 0.6, 60), Note(1, 2, 64)]
    assert line_events(short, shift=False, min_rest=0.5) == [Event(13, 4), Event(17, 4)]
    assert line_events(short, shift=False) == [Event(13, 2), Event(0, 2), Event(17, 4)]


def test_line_events_two_notes_on_one_grid_point_move_the_earlier_back_where_there_is_room():
    report = ImportReport(path=Path("<test>"))
    events = line_events([Note(0, 1, 60), Note(1, 1.04, 62), Note(1.05, 2, 64)], report,
                         shift=False)
    assert events == [Event(13, 3), Event(15, 1), Event(17, 4)] and report.dropped == 0
    # no room: the note before holds the point before, so the earlier of the two is merged
    report = ImportReport(path=Path("<test>"))
    events = line_events([Note(0, 0.75, 60), Note(0.75, 1, 62), Note(1, 1.04, 64),
                          Note(1.05, 2, 65)], report, shift=False)
    assert events == [Event(13, 3), Event(15, 1), Event(18, 4)] and report.dropped == 1


def test_on_the_grid_names_the_merged_notes_and_never_moves_a_placed_note_but_the_last():
    from synth.music.midi import on_the_grid

    notes = [Note(i * 0.15, i * 0.15 + 0.1, 60 + i) for i in range(9)]  # 0.6 quarter apart
    placed, merged = on_the_grid(notes)
    points = [p for _, p in placed]
    assert points == sorted(set(points))  # one note per point, in order
    assert len(placed) + len(merged) == len(notes)
    for cut in range(1, len(notes)):
        part, part_merged = on_the_grid(notes[:cut])
        assert part[:-1] == placed[: len(part) - 1] and part_merged == merged[: len(part_merged)]


def test_chords_become_their_top_note_from_the_first_key():
    notes = [Note(0, 1, 60), Note(0.02, 1.1, 67), Note(0.03, 0.9, 64), Note(1, 2, 62)]
    merged, count = chords_to_top(notes, window=0.04)
    assert merged == [Note(0, 1.1, 67, 80), Note(1, 2, 62)] and count == 2


def test_played_line_is_last_note_priority_and_leaves_out_notes_out_of_range():
    notes = [Note(0, 1.5, 60), Note(1, 2, 64), Note(1.5, 1.7, 84), Note(2.5, 3, 40)]
    line, outside = played_line(notes)
    assert line == [Note(0, 1, 60), Note(1, 2, 64)]
    assert [n.pitch for n in outside] == [84, 40]


def test_find_midi_files_searches_folders(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/one.mid", "a/two.MIDI", "a/no.txt", "three.mid"):
        (tmp_path / name).write_bytes(b"")
    found = find_midi_files([tmp_path / "a", tmp_path / "three.mid"])
    assert [p.name for p in found] == ["one.mid", "two.MIDI", "three.mid"]


def test_melody_line_of_nothing():
    assert melody_line([]) == ([], 0)
    assert melody_line([Note(0, 1, 60)]) == ([Note(0, 1, 60)], 0)


@given(st.binary(max_size=300))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150,
          deadline=None)
def test_importer_never_crashes_on_arbitrary_bytes(tmp_path, data):
    path = tmp_path / "fuzz.mid"
    path.write_bytes(data)
    try:
        song, _ = import_midi(path)
    except SynthError as exc:
        assert "fuzz.mid" in str(exc)
        return
    assert all(0 <= e.cls <= 24 and 1 <= e.quarters <= 32 for e in song.events)


@given(st.binary(max_size=200))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150,
          deadline=None)
def test_importer_never_crashes_on_damaged_midi(tmp_path, tail):
    good = tmp_path / "good.mid"
    make_midi(good, [scale([C4, E4, G4])])
    header = good.read_bytes()[:22]  # a valid header and the start of a track chunk
    path = tmp_path / "fuzz.mid"
    path.write_bytes(header + tail)
    try:
        import_midi(path)
    except SynthError as exc:
        assert "fuzz.mid" in str(exc)


def test_a_note_off_before_its_note_on_at_the_same_moment_is_no_note(tmp_path):
    """music21 writes grace notes this way; held to the end of the file, such a note would
    hide every lower melody note after it."""
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    track = mido.MidiTrack([
        mido.Message("note_on", note=60, velocity=80, time=0),
        mido.Message("note_off", note=60, velocity=0, time=480),
        mido.Message("note_off", note=71, velocity=0, time=0),  # the grace note: off, then on
        mido.Message("note_on", note=71, velocity=80, time=0),
        mido.Message("note_on", note=62, velocity=80, time=0),
        mido.Message("note_off", note=62, velocity=0, time=480),
        mido.Message("note_on", note=64, velocity=80, time=0),
        mido.Message("note_off", note=64, velocity=0, time=480),
    ])
    midi.tracks.append(track)
    midi.save(tmp_path / "grace.mid")
    song, _ = import_midi(tmp_path / "grace.mid")
    assert song.events == [Event(13, 4), Event(15, 4), Event(17, 4)]


@pytest.mark.parametrize("notes,rests", [(6, False), (4, True)])
def test_import_refuses_a_melody_of_more_events_than_compose_writes(tmp_path, monkeypatch,
                                                                    notes, rests):
    import synth.music.midi as midi
    import synth.music.songs as songs

    for module in (midi, songs):
        monkeypatch.setattr(module, "MAX_EVENTS", 5)
    # one beat apart, or two with a beat of silence between (each silence a rest event)
    step = 2 if rests else 1
    path = make_midi(tmp_path / "long.mid", [[(step * i, step * i + 1, 60)
                                              for i in range(notes)]])
    with pytest.raises(SynthError, match=rf"^{path}: holds more than 5 events"):
        import_midi(path)
    short = make_midi(tmp_path / "short.mid", [[(i, i + 1, 60) for i in range(5)]])
    assert len(import_midi(short)[0].events) == 5
