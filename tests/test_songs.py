import os

import pytest
from hypothesis import given, strategies as st

from synth.errors import SynthError
from synth.music.events import Event, events_of
from synth.music.songs import Song, format_song, load_dataset, parse_song, read_song, write_song


def test_parse_reads_events_and_metadata():
    song = parse_song("# title: Tune\n# source: me\n# bpm: 120\n# a note\n1 2 0\n\n 24  13\n")
    assert song.events == events_of([1, 2, 0, 24, 13])
    assert (song.title, song.source, song.bpm) == ("Tune", "me", 120.0)
    assert song.comments == ["# a note"]


@pytest.mark.parametrize("text,where,what", [
    ("1 2 25\n", "song.txt:1:5", "class 25 is out of range: expected 0-24"),
    ("1\n 2 x3\n", "song.txt:2:4", "'x3' is not an event"),
    ("1 -1\n", "song.txt:1:3", "'-1' is not an event"),
    ("1 2.5\n", "song.txt:1:3", "'2.5' is not an event"),
    ("1 ²\n", "song.txt:1:3", "is not an event"),
    ("# bpm: fast\n1\n", "song.txt:1:1", "bpm 'fast' is not a number"),
    ("# bpm: 5000\n1\n", "song.txt:1:1", "tempo 5000 is out of range"),
    ("  # bpm: nan\n1\n", "song.txt:1:3", "out of range"),
    ("# only a comment\n", "song.txt:1:1", "holds no notes"),
    ("", "song.txt:1:1", "holds no notes"),
])
def test_every_validation_error_names_file_line_column_and_value(text, where, what):
    with pytest.raises(SynthError) as info:
        parse_song(text, "song.txt")
    message = str(info.value)
    assert message.startswith(where + ":")
    assert what in message


def test_all_problems_of_a_file_are_reported_but_capped():
    with pytest.raises(SynthError) as info:
        parse_song(" ".join(["99"] * 30), "s.txt")
    lines = str(info.value).splitlines()
    assert len(lines) == 11 and "20 more problems" in lines[-1]


def test_bad_bytes_name_line_and_column(tmp_path):
    path = tmp_path / "s.txt"
    path.write_bytes(b"1 2\n3 \xff 4\n")
    with pytest.raises(SynthError, match=r"s.txt:2:3: byte 0xff is not text"):
        read_song(path)


def test_missing_file_and_folder_are_errors(tmp_path):
    with pytest.raises(SynthError, match="no such file"):
        read_song(tmp_path / "nope.txt")
    with pytest.raises(SynthError, match="is a folder"):
        read_song(tmp_path)


def test_write_then_read_round_trips(tmp_path):
    song = Song(events=events_of(range(25)) * 3, title="T", source="S", bpm=99.5)
    write_song(tmp_path / "a.txt", song)
    again = read_song(tmp_path / "a.txt")
    assert (again.events, again.title, again.source, again.bpm) == (song.events, "T", "S", 99.5)
    assert all(len(line.split()) <= 16 for line in format_song(song).splitlines())


def test_write_refuses_bad_events_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    write_song(path, Song(events=events_of([1, 2, 3])))
    before = path.read_bytes()
    for bad in ([Event(1), Event(25)], [], [Event(1), 2], [Event(1, 0)], [Event(1, 33)],
                [Event(1), (2, 1.5)]):
        with pytest.raises(SynthError):
            write_song(path, Song(events=bad))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.txt"]  # no temporary file left behind


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    write_song(path, Song(events=events_of([1, 2, 3])))

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", explode)
    with pytest.raises(KeyboardInterrupt):
        write_song(path, Song(events=events_of([4, 5, 6])))
    assert read_song(path).events == events_of([1, 2, 3])
    assert os.listdir(tmp_path) == ["a.txt"]


def test_dataset_reports_every_bad_file_at_once(tmp_path):
    (tmp_path / "good.txt").write_text("1 2 3\n")
    (tmp_path / "bad1.txt").write_text("1 2 30\n")
    (tmp_path / "bad2.txt").write_text("# title: x\nC4\n")
    (tmp_path / "notes.md").write_text("ignored")
    with pytest.raises(SynthError) as info:
        load_dataset(tmp_path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert any("bad1.txt:1:5: class 30" in line for line in lines)
    assert any("bad2.txt:2:1: 'C4' is not an event" in line for line in lines)


def test_dataset_errors_for_missing_or_empty_folder(tmp_path):
    with pytest.raises(SynthError, match="no such folder"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(SynthError, match="no song files"):
        load_dataset(tmp_path)


def test_the_shipped_dataset_loads_and_is_big_enough():
    from pathlib import Path

    songs = load_dataset(Path(__file__).parent.parent / "dataset")
    assert len(songs) >= 40
    assert sum(len(s.events) for s in songs) >= 6000
    assert all(s.title and s.source for s in songs)
    assert not any("essen" in s.source.lower() for s in songs)


@given(st.text(max_size=200))
def test_parser_never_crashes_on_any_text(text):
    try:
        song = parse_song(text, "x.txt")
    except SynthError as exc:
        assert str(exc).startswith("x.txt:")
        return
    assert song.events and all(0 <= e.cls <= 24 and 1 <= e.quarters <= 32 for e in song.events)


@given(st.binary(max_size=200))
def test_reader_never_crashes_on_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("b") / "s.txt"
    path.write_bytes(data)
    try:
        read_song(path)
    except SynthError as exc:
        assert str(path) in str(exc)


# --- lengths -------------------------------------------------------------------------------


def test_events_carry_lengths_in_beats():
    song = parse_song("13:2 0:0.5 15:3/2 17 0:.25 24:8 1:1\n")
    assert song.events == [Event(13, 8), Event(0, 2), Event(15, 6), Event(17, 4), Event(0, 1),
                           Event(24, 32), Event(1, 4)]
    assert song.beats == 2 + 0.5 + 1.5 + 1 + 0.25 + 8 + 1
    assert song.seconds(120) == pytest.approx(song.beats / 2)


@pytest.mark.parametrize("text,where,what", [
    ("13 15:3\n17:0.3\n", "song.txt:2:4", "length 0.3 is not a multiple of 1/4 beat"),
    ("13 15:9\n", "song.txt:1:7", "length 9 is out of range"),
    ("13 15:0\n", "song.txt:1:7", "length 0 is out of range"),
    ("1\n  13:1/3", "song.txt:2:6", "length 1/3 is not a multiple of 1/4 beat"),
    ("13:two\n", "song.txt:1:4", "length 'two' is not a number of beats"),
    ("13:-1\n", "song.txt:1:4", "length '-1' is not a number of beats"),
    ("13:\n", "song.txt:1:4", "length is missing after ':'"),
    ("13:1:2\n", "song.txt:1:4", "length '1:2' is not a number of beats"),
    ("13:" + "9" * 40 + "\n", "song.txt:1:4", "…"),
    ("C4:2\n", "song.txt:1:1", "'C4:2' is not an event"),
    ("25:2\n", "song.txt:1:1", "class 25 is out of range"),
])
def test_length_errors_name_file_line_column_value_and_what_was_expected(text, where, what):
    with pytest.raises(SynthError) as info:
        parse_song(text, "song.txt")
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(where + ": ") and what in message
    if "length" in what:
        assert "expected a multiple of 1/4 beat from 1/4 to 8" in message


def test_old_plain_integer_files_read_as_before_and_are_written_without_lengths(tmp_path):
    text = "# title: Old\n# source: seed\n1 2 3 0 13\n24 0 0 5\n"
    song = parse_song(text, "old.txt")
    assert song.events == events_of([1, 2, 3, 0, 13, 24, 0, 0, 5])
    assert all(e.quarters == 4 for e in song.events)
    write_song(tmp_path / "again.txt", song)
    written = (tmp_path / "again.txt").read_text()
    assert ":" not in written.replace("# title:", "").replace("# source:", "")
    assert written.splitlines()[2] == "1 2 3 0 13 24 0 0 5"


def test_only_lengths_other_than_one_beat_are_written(tmp_path):
    song = Song(events=[Event(13, 4), Event(15, 6), Event(0, 2), Event(17, 1), Event(20, 32)])
    assert format_song(song).strip() == "13 15:1.5 0:0.5 17:0.25 20:8"


event_st = st.builds(Event, st.integers(0, 24), st.integers(1, 32))


@given(st.lists(event_st, min_size=1, max_size=60))
def test_any_song_with_lengths_round_trips_through_its_file(events):
    song = parse_song(format_song(Song(events=events, bpm=133)), "x.txt")
    assert song.events == events and song.bpm == 133


def test_a_song_of_more_events_than_compose_writes_is_refused_naming_the_file(tmp_path):
    from synth.music.songs import MAX_EVENTS

    path = tmp_path / "long.txt"
    path.write_text("13 " * MAX_EVENTS + "\n")
    assert len(read_song(path).events) == MAX_EVENTS  # the most compose writes still reads
    path.write_text("13 " * (MAX_EVENTS + 1) + "\n")
    with pytest.raises(SynthError, match=rf"^{path}: holds more than {MAX_EVENTS} events"):
        read_song(path)


def test_render_refuses_a_song_too_long_before_any_work(cli):
    from pathlib import Path

    from synth.music.songs import MAX_EVENTS

    Path("long.txt").write_text("13:0.25 " * (MAX_EVENTS + 1))
    code, out, err = cli("render", "long.txt", "--out", "long.wav")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"long.txt: holds more than {MAX_EVENTS} events" in err
    assert not list(Path(".").glob("*.wav")) and not list(Path(".").glob(".*"))
