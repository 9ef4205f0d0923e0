import os

import pytest
from hypothesis import given, strategies as st

from synth.errors import SynthError
from synth.songs import Song, format_song, load_dataset, parse_song, read_song, write_song


def test_parse_reads_tokens_and_metadata():
    song = parse_song("# title: Tune\n# source: me\n# bpm: 120\n# a note\n1 2 0\n\n 24  13\n")
    assert song.tokens == [1, 2, 0, 24, 13]
    assert (song.title, song.source, song.bpm) == ("Tune", "me", 120.0)
    assert song.comments == ["# a note"]


@pytest.mark.parametrize("text,where,what", [
    ("1 2 25\n", "song.txt:1:5", "class 25 is out of range: expected 0-24"),
    ("1\n 2 x3\n", "song.txt:2:4", "'x3' is not a class"),
    ("1 -1\n", "song.txt:1:3", "'-1' is not a class"),
    ("1 2.5\n", "song.txt:1:3", "'2.5' is not a class"),
    ("1 ²\n", "song.txt:1:3", "is not a class"),
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
    song = Song(tokens=list(range(25)) * 3, title="T", source="S", bpm=99.5)
    write_song(tmp_path / "a.txt", song)
    again = read_song(tmp_path / "a.txt")
    assert (again.tokens, again.title, again.source, again.bpm) == (song.tokens, "T", "S", 99.5)
    assert all(len(line.split()) <= 16 for line in format_song(song).splitlines())


def test_write_refuses_bad_tokens_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    write_song(path, Song(tokens=[1, 2, 3]))
    before = path.read_bytes()
    for bad in ([1, 25], [], [1, "2"]):
        with pytest.raises(SynthError):
            write_song(path, Song(tokens=bad))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.txt"]  # no temporary file left behind


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    write_song(path, Song(tokens=[1, 2, 3]))

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", explode)
    with pytest.raises(KeyboardInterrupt):
        write_song(path, Song(tokens=[4, 5, 6]))
    assert read_song(path).tokens == [1, 2, 3]
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
    assert any("bad2.txt:2:1: 'C4' is not a class" in line for line in lines)


def test_dataset_errors_for_missing_or_empty_folder(tmp_path):
    with pytest.raises(SynthError, match="no such folder"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(SynthError, match="no song files"):
        load_dataset(tmp_path)


def test_the_shipped_dataset_loads_and_is_big_enough():
    from pathlib import Path

    songs = load_dataset(Path(__file__).parent.parent / "dataset")
    assert len(songs) >= 40
    assert sum(len(s.tokens) for s in songs) >= 6000
    assert all(s.title and s.source for s in songs)
    assert not any("essen" in s.source.lower() for s in songs)


@given(st.text(max_size=200))
def test_parser_never_crashes_on_any_text(text):
    try:
        song = parse_song(text, "x.txt")
    except SynthError as exc:
        assert str(exc).startswith("x.txt:")
        return
    assert song.tokens and all(0 <= t <= 24 for t in song.tokens)


@given(st.binary(max_size=200))
def test_reader_never_crashes_on_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("b") / "s.txt"
    path.write_bytes(data)
    try:
        read_song(path)
    except SynthError as exc:
        assert str(path) in str(exc)
