"""The command line end to end: exit statuses, one-line errors, what lands on disk."""

import subprocess
import sys

from conftest import make_midi
from synth.songs import read_song


def test_help_lists_the_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("import", "devices"):
        assert command in out


def test_import_saves_songs_and_reports_each_file(cli, tmp_path):
    make_midi(tmp_path / "one.mid", [[(0, 1, 60), (1, 2, 64), (0, 1, 48)]])
    (tmp_path / "more").mkdir()
    make_midi(tmp_path / "more" / "two.mid", [[(0, 1, 84), (3, 4, 86)]])
    code, out, err = cli("import", "one.mid", "more")
    assert code == 0, err
    assert read_song(tmp_path / "dataset" / "one.txt").tokens == [13, 17]
    assert read_song(tmp_path / "dataset" / "two.txt").tokens == [13, 0, 0, 15]
    assert "one.mid" in out and "two.mid" in out and "-2 oct" in out


def test_import_never_overwrites_an_existing_song(cli, tmp_path):
    make_midi(tmp_path / "one.mid", [[(0, 1, 60)]])
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "one.txt").write_text("1 2 3\n")
    assert cli("import", "one.mid")[0] == 0
    assert (tmp_path / "dataset" / "one.txt").read_text() == "1 2 3\n"
    assert read_song(tmp_path / "dataset" / "one-2.txt").tokens == [13]


def test_a_corrupt_file_is_one_error_and_the_others_still_import(cli, tmp_path):
    make_midi(tmp_path / "good.mid", [[(0, 1, 62)]])
    (tmp_path / "bad.mid").write_bytes(b"garbage")
    code, out, err = cli("import", "bad.mid", "good.mid")
    assert code == 2
    assert read_song(tmp_path / "dataset" / "good.txt").tokens == [15]
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
