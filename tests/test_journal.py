"""synth.play.journal: a take's journal read back after a kill, a session's WAV and log kept whole
as they grow, and the leftovers of older sessions moved into place."""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import date
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from synth.play import journal
from synth.sound.piano import RATE


def press(pitch, velocity=90):
    return mido.Message("note_on", note=pitch, velocity=velocity)


def release(pitch):
    return mido.Message("note_off", note=pitch, velocity=0)


PLAYED = [(0.0, press(60)), (0.2, release(60)), (0.25, press(64, 70)),
          (0.3, mido.Message("control_change", control=64, value=127)), (0.5, release(64))]


def journal_of(folder, messages=PLAYED, name="My Tune"):
    log = journal.TakeJournal(folder, name, 180.0, "replay of p.mid", day=date(2026, 1, 2))
    for t, msg in messages:
        log.add(t, msg)
    return log


def test_a_journal_gives_back_every_message_as_played(tmp_path):
    log = journal_of(tmp_path)
    log.tick(0.9)  # the last sync was at 0.5 s: not due yet
    log.tick(1.1)
    log.close()
    assert log.path.name.startswith(".my-tune.") and log.path.suffix == ".journal"
    [take] = list(journal.unfinished_takes(tmp_path))
    assert (take.bpm, take.name, take.source, take.day) == \
        (180.0, "My Tune", "replay of p.mid", date(2026, 1, 2))
    assert [(t, m.bytes()) for t, m in take.messages] == [(t, m.bytes()) for t, m in PLAYED]
    assert take.seconds == pytest.approx(1.1)  # the last sync: it lasted at least that
    assert take.saving is None


@pytest.mark.parametrize("cut", [1, 3, 7, 11])
def test_a_journal_cut_mid_write_recovers_up_to_the_last_whole_event(tmp_path, cut):
    log = journal_of(tmp_path)
    log.close()
    data = log.path.read_bytes()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[1]
    log.path.write_bytes(data[: len(data) - 1 - len(last) + cut])  # the last line cut short
    [take] = list(journal.unfinished_takes(tmp_path))
    assert [(t, m.bytes()) for t, m in take.messages] == [(t, m.bytes()) for t, m in PLAYED[:-1]]


def test_a_recovery_marks_its_save_after_the_last_whole_line(tmp_path):
    log = journal_of(tmp_path)
    log.close()
    log.path.write_bytes(log.path.read_bytes()[:-4])  # the last message cut mid-write
    [take] = list(journal.unfinished_takes(tmp_path))
    again = journal.TakeJournal.reopen(take.path)
    again.saving("my-tune-2")
    again.close()
    after = journal.read_take(take.path)
    assert after.saving == "my-tune-2" and len(after.messages) == len(PLAYED) - 1


def test_a_journal_cut_in_its_first_line_holds_nothing(tmp_path):
    log = journal_of(tmp_path)
    log.close()
    log.path.write_bytes(log.path.read_bytes()[:10])
    [take] = list(journal.unfinished_takes(tmp_path))
    assert take.messages == [] and take.path == log.path


def test_a_take_being_recorded_is_not_recovered(tmp_path):
    log = journal_of(tmp_path)  # still open and locked, as while recording
    assert list(journal.unfinished_takes(tmp_path)) == []
    log.close()
    assert len(list(journal.unfinished_takes(tmp_path))) == 1


def test_two_recoveries_never_take_one_journal(tmp_path):
    journal_of(tmp_path).close()
    first = journal.unfinished_takes(tmp_path)
    take = next(first)  # held by the first recovery
    assert list(journal.unfinished_takes(tmp_path)) == []
    take.path.unlink()
    assert list(first) == [] and list(journal.unfinished_takes(tmp_path)) == []


def test_a_journal_that_cannot_be_written_stops_but_the_take_goes_on(tmp_path, monkeypatch):
    log = journal_of(tmp_path, PLAYED[:2])
    real = log.file

    class Full:
        closed = False

        def write(self, text):
            raise OSError(28, "No space left on device")

        def close(self):
            real.close()

    log.file = Full()
    log.add(0.3, press(67))  # no exception: the take in memory is still whole
    assert log.failed == "No space left on device"
    log.close()
    [take] = list(journal.unfinished_takes(tmp_path))
    assert len(take.messages) == 2


def test_the_journal_is_synced_at_least_every_half_second(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(journal.os, "fsync", lambda fd: synced.append(fd))
    log = journal_of(tmp_path, [])
    assert len(synced) == 2  # made: the journal, then its folder (its name)
    synced.clear()
    for step in range(40):  # 2 s of a dense stream of messages and ticks
        log.add(step * 0.05, press(60))
        log.tick(step * 0.05 + 0.01)
    log.close()
    assert 4 <= len(synced) <= 5
    assert journal.SYNC_EVERY <= 0.5


def test_a_session_wav_plays_while_it_is_still_being_written(tmp_path):
    wav = journal.SessionWav(tmp_path / "s.wav", RATE, 2)
    assert soundfile.info(tmp_path / "s.wav").frames == 0  # there at once, a WAV already
    block = np.full((256, 2), 0.25, dtype=np.float32)
    for _ in range(int(2.2 * RATE / 256)):  # 2.2 s of sound, the file still open
        wav.write(block)
    frames = int(2.2 * RATE / 256) * 256
    seen = soundfile.info(tmp_path / "s.wav")  # read as any player would, mid-session
    assert seen.frames == frames  # the header counts every block written
    assert wave_frames(tmp_path / "s.wav") == frames
    audio, _ = soundfile.read(tmp_path / "s.wav", dtype="float32")
    assert np.allclose(audio, 0.25, atol=1e-4)
    assert wav.close() == tmp_path / "s.wav"
    assert soundfile.info(tmp_path / "s.wav").frames == frames


def test_a_session_wav_holds_the_samples_soundfile_would_write(tmp_path):
    rng = np.random.default_rng(3)
    audio = np.clip(rng.normal(0, 0.5, (3000, 2)), -1.2, 1.2).astype(np.float32)
    wav = journal.SessionWav(tmp_path / "s.wav", RATE, 2)
    for start in range(0, len(audio), 256):
        wav.write(audio[start : start + 256])
    wav.close()
    soundfile.write(tmp_path / "ref.wav", audio, RATE, subtype="PCM_16")
    mine, _ = soundfile.read(tmp_path / "s.wav", dtype="int16")
    theirs, _ = soundfile.read(tmp_path / "ref.wav", dtype="int16")
    assert np.array_equal(mine, theirs)


def test_a_session_wav_is_synced_as_it_grows(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(journal.files.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    wav = journal.SessionWav(tmp_path / "s.wav", RATE, 2)
    synced.clear()
    for _ in range(int(2 * RATE / 256)):
        wav.write(np.zeros((256, 2), dtype=np.float32))
        wav._sync.close()  # each sync done before the next block, as on an idle disk
    assert 3 <= len(synced) <= 4  # every SYNC_EVERY (half a second) of sound
    wav.close()


def test_a_session_wav_on_a_full_disk_is_one_clear_error(tmp_path, monkeypatch):
    import errno
    import wave

    from synth.errors import SynthError

    wav = journal.SessionWav(tmp_path / "s.wav", RATE, 2)
    wav.write(np.zeros((RATE, 2), dtype=np.float32))

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(wave.Wave_write, "writeframesraw", full)
    with pytest.raises(SynthError, match="s.wav: cannot write: No space left on device; the "
                                         "session so far is saved in it"):
        wav.write(np.zeros((256, 2), dtype=np.float32))
    monkeypatch.undo()
    wav.close()
    assert soundfile.info(tmp_path / "s.wav").frames == RATE  # what was written stays


def test_a_session_log_writes_each_line_whole_at_once(tmp_path):
    log = journal.SessionLog(tmp_path / "sub" / "log.jsonl")
    long = json.dumps({"answer": list(range(5000))})  # longer than any buffer
    log.write(long)
    assert (tmp_path / "sub" / "log.jsonl").read_text() == long + "\n"  # not closed yet
    log.write("{}")
    assert log.close() == tmp_path / "sub" / "log.jsonl"
    assert (tmp_path / "sub" / "log.jsonl").read_text().splitlines() == [long, "{}"]


def old_leftovers(folder, seconds=3.0, answers=3, age=3600):
    """What a session of an older synth left when it was killed: a WAV whose header was
    never finished (length 0) and a log whose last line was cut."""
    wav = folder / ".s.ab12cd_9.tmp.wav"
    with soundfile.SoundFile(folder / "growing.wav", "w", RATE, 2, subtype="PCM_16",
                             format="WAV") as sound:
        sound.write(np.full((int(seconds * RATE), 2), 0.1))
        # the file as a kill before closing leaves it, and a frame cut short
        wav.write_bytes((folder / "growing.wav").read_bytes() + b"\x01\x02\x03")
    (folder / "growing.wav").unlink()
    log = folder / ".log.x9y8z7w6.tmp.jsonl"
    log.write_text("".join(json.dumps({"answer": i}) + "\n" for i in range(answers))
                   + '{"answ')
    for path in (wav, log):
        os.utime(path, (time.time() - age, time.time() - age))
    return wav, log


def test_leftovers_of_older_sessions_are_moved_into_place(tmp_path):
    wav, log = old_leftovers(tmp_path)
    (tmp_path / "s.wav").write_bytes(b"someone else's")
    found = {r.path.name: r for r in journal.recover_leftovers(tmp_path)}
    assert set(found) == {"s-2.wav", "log.jsonl"}
    assert found["s-2.wav"].what == "3.0 s of sound"
    assert found["log.jsonl"].what == "3 answers"
    assert soundfile.info(tmp_path / "s-2.wav").frames == 3 * RATE
    assert wave_frames(tmp_path / "s-2.wav") == 3 * RATE  # the header itself says so
    assert [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()] \
        == [{"answer": i} for i in range(3)]
    assert not wav.exists() and not log.exists()
    assert (tmp_path / "s.wav").read_bytes() == b"someone else's"


def wave_frames(path: Path) -> int:
    import wave

    with wave.open(str(path)) as reader:
        return reader.getnframes()


def test_a_file_being_written_now_is_no_leftover(tmp_path):
    wav, log = old_leftovers(tmp_path, age=1)
    assert journal.recover_leftovers(tmp_path) == []
    assert wav.exists() and log.exists()
    (tmp_path / ".notes.ab12cd34.tmp.txt").write_text("1 2 3\n")  # not a session's file
    assert journal.leftovers(tmp_path, now=time.time() + 3600) == sorted([wav, log])


def test_a_killed_compose_is_no_session_leftover(tmp_path):
    """files.atomic_path's half-written files (a compose or an import killed mid-write) are
    never moved into place as if a session had left them."""
    from synth import files

    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(tmp_path / "song.wav") as tmp:
            name = tmp.name
            raise KeyboardInterrupt
    partial = tmp_path / name  # what a SIGKILL leaves there: no clean-up runs
    soundfile.write(partial, np.full((RATE, 2), 0.1), RATE, subtype="PCM_16", format="WAV")
    os.utime(partial, (0, 0))
    assert journal.leftovers(tmp_path, now=time.time() + 3600) == []
    assert journal.recover_leftovers(tmp_path) == [] and partial.exists()
    assert not (tmp_path / "song.wav").exists()


def test_a_leftover_that_is_no_wav_is_left_alone(tmp_path):
    path = tmp_path / ".s.abcdefgh.tmp.wav"
    path.write_bytes(b"RIFF")
    os.utime(path, (0, 0))
    assert journal.recover_leftovers(tmp_path) == []
    assert path.exists()


def test_the_lock_is_the_systems(tmp_path):
    """A journal's lock is a flock on it: let go when its process ends, however it ends."""
    log = journal_of(tmp_path)
    with open(log.path, "rb") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    log.close()
