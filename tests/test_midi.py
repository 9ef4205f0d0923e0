import mido
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import make_midi
from synth.errors import SynthError
from synth.midi import (find_midi_files, import_midi, melody_line, Note, rests_for_gap,
                        tokens_to_midi, write_midi)

C4, E4, G4, C5 = 60, 64, 67, 72


def scale(pitches, step=1.0, length=1.0, start=0.0):
    return [(start + i * step, start + i * step + length, p) for i, p in enumerate(pitches)]


def test_a_plain_melody_in_range_keeps_its_classes(tmp_path):
    path = make_midi(tmp_path / "m.mid", [scale([C4, E4, G4])])
    song, report = import_midi(path)
    assert song.tokens == [13, 17, 20]
    assert (report.kept, report.folded, report.dropped, report.rests, report.octaves) == \
        (3, 0, 0, 0, 0)
    assert song.bpm == 120


def test_overlapping_notes_keep_the_highest(tmp_path):
    chord_then_line = [(0, 1, C4), (0, 1, E4), (0, 1, G4),  # chord: G4 wins
                       (1, 3, C5 - 1),  # B4 held ...
                       (1.5, 2, C4),  # ... a lower note under it is dropped
                       (2, 3, C5 - 12)]  # C4 under the held B4 is dropped too
    song, report = import_midi(make_midi(tmp_path / "m.mid", [chord_then_line]))
    assert song.tokens == [20, 24]
    assert report.dropped == 4


def test_a_higher_note_cuts_a_lower_one_short(tmp_path):
    song, _ = import_midi(make_midi(tmp_path / "m.mid", [[(0, 4, C4), (1, 2, G4)]]))
    assert song.tokens == [13, 20]


def test_melody_out_of_range_is_shifted_by_octaves_and_strays_folded(tmp_path):
    high = [84, 88, 91, 120]  # C6 E6 G6 C8: -2 and -3 octaves both fit three; the smaller wins
    song, report = import_midi(make_midi(tmp_path / "m.mid", [scale(high)]))
    assert report.octaves == -2
    assert song.tokens == [13, 17, 20, 13]
    assert report.folded == 1


def test_low_melody_moves_up(tmp_path):
    song, report = import_midi(make_midi(tmp_path / "m.mid", [scale([36, 40, 43])]))
    assert report.octaves == 1 and song.tokens == [1, 5, 8]


def test_gaps_become_one_rest_per_whole_beat(tmp_path):
    notes = [(0, 1, C4), (2, 3, E4), (3.3, 4, G4), (6.9, 7.5, C4)]
    song, report = import_midi(make_midi(tmp_path / "m.mid", [notes]))
    # 1 beat of silence -> 1 rest; 0.3 beat -> none; 2.9 beats -> 3 (within tolerance)
    assert song.tokens == [13, 0, 17, 20, 0, 0, 0, 13]
    assert report.rests == 4


@pytest.mark.parametrize("gap,rests", [(0, 0), (0.5, 0), (0.75, 1), (1.0, 1), (1.7, 1),
                                       (2.0, 2), (-1, 0), (float("nan"), 0)])
def test_rests_for_gap(gap, rests):
    assert rests_for_gap(gap) == rests


def test_tempo_changes_keep_rests_in_beats(tmp_path):
    notes = [(0, 1, C4), (2, 3, E4), (4, 5, G4)]
    path = make_midi(tmp_path / "m.mid", [notes], tempos=[(0, 100), (1.5, 200)])
    song, _ = import_midi(path)
    assert song.tokens == [13, 0, 17, 0, 20]
    assert song.bpm == 100


@pytest.mark.parametrize("kind", [0, 1])
def test_several_tracks_in_type_0_and_type_1_files(tmp_path, kind):
    melody = scale([G4, G4 + 2, G4 + 4])
    bass = scale([36, 38, 40])
    path = make_midi(tmp_path / "m.mid", [melody, bass], type=kind)
    song, report = import_midi(path)
    assert mido.MidiFile(path).type == kind
    assert song.tokens == [20, 22, 24]
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
    assert import_midi(tmp_path / "m.mid")[0].tokens == [13, 17]


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


def test_export_then_import_gives_back_the_tokens(tmp_path):
    tokens = [13, 0, 17, 20, 20, 0, 0, 1, 24, 5]
    write_midi(tmp_path / "x.mid", tokens_to_midi(tokens, bpm=90))
    song, _ = import_midi(tmp_path / "x.mid")
    assert song.tokens == tokens and song.bpm == 90


@given(st.lists(st.integers(0, 24), min_size=1, max_size=40).filter(lambda t: any(t)),
       st.sampled_from([60, 150, 233]))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
def test_export_import_round_trip_any_song(tmp_path, tokens, bpm):
    tokens = tokens[next(i for i, t in enumerate(tokens) if t):]  # leading rests have no onset
    while tokens[-1] == 0:
        tokens.pop()
    write_midi(tmp_path / "x.mid", tokens_to_midi(tokens, bpm=bpm))
    song, _ = import_midi(tmp_path / "x.mid")
    assert song.tokens == tokens


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
    assert all(0 <= t <= 24 for t in song.tokens)


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
