"""Where a live session writes (synth/play/outputs.py): the WAV an --output spec names, the
folders looked in for what older sessions left, and their recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from synth.play import outputs
from test_journal import old_leftovers


@pytest.mark.parametrize("spec, wav", [
    ("wav:take/s.wav", Path("take/s.wav")), ("wav:s.txt", Path("s.txt")), ("wav:", None),
    ("audio", None), ("audio:wav:x", None), ("midi:wav", None), (None, None),
])
def test_the_session_wav_of_an_output_spec(spec, wav):
    assert outputs.session_wav(spec) == wav


def test_a_session_recovers_first_where_it_writes():
    assert outputs.session_folders(None) == [outputs.LIVE_WAV.parent] == [Path("out")]
    assert outputs.session_folders("audio", Path("logs/a.jsonl")) == [Path("out"), Path("logs")]
    assert outputs.session_folders("wav:take/s.wav") == [Path("take")]


def test_recover_sessions_looks_in_each_folder_once(tmp_path):
    old_leftovers(tmp_path)
    found = outputs.recover_sessions([tmp_path, tmp_path / ".", tmp_path / "none"])
    assert sorted(r.path.name for r in found) == ["log.jsonl", "s.wav"]
    assert outputs.recover_sessions([tmp_path]) == []  # moved into place: nothing left
