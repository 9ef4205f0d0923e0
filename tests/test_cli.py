"""The command line end to end: exit statuses, one-line errors, what lands on disk."""

import subprocess

import pytest
import sys

from conftest import make_midi
from synth.music.events import Event, events_of
from synth.music.songs import read_song


def test_help_lists_the_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("record", "live", "compose", "render", "train", "evaluate", "import",
                    "devices"):
        assert command in out


@pytest.mark.parametrize("command,default", [("compose", "[default: ./model"),
                                             ("live", "[default: as many"),
                                             ("live", "[default: audio, else")])
def test_help_shows_written_defaults(cli, command, default):
    code, out, _ = cli(command, "--help")
    assert code == 0 and default in " ".join(out.replace("│", " ").split())


def test_import_saves_songs_and_reports_each_file(cli, tmp_path):
    make_midi(tmp_path / "one.mid", [[(0, 1, 60), (1, 2, 64), (0, 1, 48)]])
    (tmp_path / "more").mkdir()
    make_midi(tmp_path / "more" / "two.mid", [[(0, 1, 84), (3, 4, 86)]])
    code, out, err = cli("import", "one.mid", "more")
    assert code == 0, err
    assert read_song(tmp_path / "dataset" / "one.txt").events == events_of([13, 17])
    assert read_song(tmp_path / "dataset" / "two.txt").events == \
        [Event(13, 4), Event(0, 8), Event(15, 4)]
    assert "one.mid" in out and "two.mid" in out and "-2 oct" in out


def test_import_never_overwrites_an_existing_song(cli, tmp_path):
    make_midi(tmp_path / "one.mid", [[(0, 1, 60)]])
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "one.txt").write_text("1 2 3\n")
    assert cli("import", "one.mid")[0] == 0
    assert (tmp_path / "dataset" / "one.txt").read_text() == "1 2 3\n"
    assert read_song(tmp_path / "dataset" / "one-2.txt").classes == [13]


def test_a_corrupt_file_is_one_error_and_the_others_still_import(cli, tmp_path):
    make_midi(tmp_path / "good.mid", [[(0, 1, 62)]])
    (tmp_path / "bad.mid").write_bytes(b"garbage")
    code, out, err = cli("import", "bad.mid", "good.mid")
    assert code == 2
    assert read_song(tmp_path / "dataset" / "good.txt").classes == [15]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "bad.mid: not a readable MIDI file" in lines[0]
    assert "Traceback" not in err


def test_import_of_nothing_is_an_error(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = cli("import", "empty")
    assert code == 2 and "no MIDI files" in err


def test_usage_errors_exit_2(cli):
    assert cli("import")[0] == 2
    assert cli("no-such-command")[0] == 2


def test_devices_on_a_machine_without_any_says_so_in_one_sentence():
    # A real process, so that ALSA's own messages on file descriptor 2 would be seen.
    result = subprocess.run([sys.executable, "-m", "synth.cli", "devices"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr == ""
    assert "Traceback" not in result.stdout and "ALSA" not in result.stdout


def test_debug_shows_the_traceback(cli, tmp_path):
    import pytest

    from synth.errors import SynthError

    (tmp_path / "bad.mid").write_bytes(b"garbage")
    with pytest.raises(SynthError):
        cli("--debug", "import", "bad.mid")


def test_compose_with_the_shipped_model_writes_everything(cli, tmp_path):
    import soundfile

    code, out, err = cli("compose", "--notes", "24", "--seed", "3", "--primer",
                         "C4:1.5 E4:0.5 G4:2", "--out", "a.wav", "--midi", "a.mid", "--tokens",
                         "a.txt", "--plot", "a.png", "--bpm", "120")
    assert code == 0, err
    assert "24 events after a 3-event primer" in out
    song = read_song(tmp_path / "a.txt")
    assert song.events[:3] == [Event(13, 6), Event(17, 2), Event(20, 8)]
    assert len(song.events) == 27 and song.bpm == 120
    info = soundfile.info(tmp_path / "a.wav")
    assert info.samplerate == 44_100 and info.duration >= song.beats * 0.5
    from synth.music.midi import import_midi

    inner = song.events[:]
    while inner[-1].is_rest:  # a MIDI file has no trace of rests after its last note
        inner.pop()
    assert import_midi(tmp_path / "a.mid")[0].events == inner
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    cli("compose", "--notes", "24", "--seed", "3", "--primer", "C4:1.5 E4:0.5 G4:2", "--out",
        "b.wav", "--tokens", "b.txt", "--bpm", "120")
    assert read_song(tmp_path / "b.txt").events == song.events  # same seed, same song


def test_compose_draws_lengths_and_even_gives_every_note_one_beat(cli, tmp_path, tiny_model):
    code, out, err = cli("compose", "--model", tiny_model, "--notes", "60", "--seed", "1",
                         "--out", "a.wav", "--tokens", "a.txt")
    assert code == 0, err
    assert len({e.quarters for e in read_song(tmp_path / "a.txt").events}) > 1
    code, out, err = cli("compose", "--model", tiny_model, "--notes", "60", "--seed", "1",
                         "--out", "b.wav", "--tokens", "b.txt", "--even")
    assert code == 0, err
    even = read_song(tmp_path / "b.txt")
    assert {e.quarters for e in even.events} == {4}
    assert even.classes == read_song(tmp_path / "a.txt").classes
    lines = [ln for ln in (tmp_path / "b.txt").read_text().splitlines() if not ln.startswith("#")]
    assert all(word.isdigit() for ln in lines for word in ln.split())  # plain, as before rhythm


def test_a_classes_only_model_composes_one_beat_notes_and_says_so(cli, tmp_path):
    from conftest import random_weights
    from synth.learn.model import save_model

    save_model(tmp_path / "old", random_weights(lengths=False), {})
    code, out, err = cli("compose", "--model", "old", "--notes", "12", "--out", "a.wav",
                         "--tokens", "a.txt")
    assert code == 0, err
    assert "predicts notes only" in " ".join(out.split())
    assert {e.quarters for e in read_song(tmp_path / "a.txt").events} == {4}


def test_compose_defaults_to_numbered_files_in_out(cli, tmp_path):
    assert cli("compose", "--notes", "5")[0] == 0
    assert cli("compose", "--notes", "5")[0] == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["song-2.wav", "song.wav"]


def test_compose_refuses_to_overwrite_and_keeps_the_file(cli, tmp_path):
    (tmp_path / "a.wav").write_bytes(b"precious")
    code, _, err = cli("compose", "--notes", "5", "--out", "a.wav")
    assert code == 2 and "exists already" in err
    assert (tmp_path / "a.wav").read_bytes() == b"precious"


def test_compose_primer_from_a_song_file(cli, tmp_path):
    (tmp_path / "p.txt").write_text("13 15 17\n")
    code, out, err = cli("compose", "--notes", "4", "--primer", "p.txt", "--out", "x.wav")
    assert code == 0, err
    assert "3-event primer" in out


@pytest.mark.parametrize("args,message", [
    (["--notes", "0"], "--notes 0 is out of range"),
    (["--notes", "100001"], "--notes 100001 is out of range"),
    (["--primer", "C4:0.3"], "length 0.3 is not a multiple of 1/4 beat"),
    (["--temperature", "0"], "--temperature 0 is out of range"),
    (["--bpm", "1000"], "tempo 1000 is out of range"),
    (["--primer", "C4 H9"], "'H9' is not a note name"),
    (["--primer", "missing.txt"], "missing.txt: no such file"),
    (["--out", "x.mp3"], "cannot write .mp3"),
    (["--model", "nowhere"], "no model here"),
    (["--cutoff", "1"], "--cutoff 1 Hz is out of range"),
])
def test_compose_bad_input_is_one_line_and_status_2(cli, args, message):
    code, out, err = cli("compose", "--notes", "5", *args)
    assert code == 2, out
    assert len(err.strip().splitlines()) == 1 and message in err


def test_render_a_song_file_and_a_midi_file(cli, tmp_path):
    import soundfile

    (tmp_path / "s.txt").write_text("# bpm: 100\n13:2 0:0.5 17:1.5 20\n")
    code, out, err = cli("render", "s.txt", "--out", "s.wav", "--no-fx", "--midi", "s.mid")
    assert code == 0, err
    assert "100 bpm" in out and "3.0 s" in out  # 5 beats at 100 bpm
    assert soundfile.info(tmp_path / "s.wav").duration >= 5 * 0.6
    code, out, err = cli("render", "s.mid", "--out", "m.flac")
    assert code == 0, err
    assert soundfile.info(tmp_path / "m.flac").samplerate == 44_100


def test_render_a_bad_song_names_the_place(cli, tmp_path):
    (tmp_path / "s.txt").write_text("13 99\n")
    code, _, err = cli("render", "s.txt")
    assert code == 2 and "s.txt:1:4: class 99 is out of range" in err
