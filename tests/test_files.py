"""synth/files.py: saves synced to the disk before they take their name, names claimed without a
race, partial files named by their process and cleared once it is gone, SIGTERM during a save
handled as Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from synth import files


@pytest.fixture
def calls(monkeypatch):
    """Every fsync (of a file or a folder) and rename, in order."""
    seen: list[tuple[str, str]] = []
    real_fsync, real_replace, real_link = os.fsync, os.replace, os.link

    def fsync(fd):
        seen.append(("fsync", "folder" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"))
        return real_fsync(fd)

    def replace(src, dst):
        seen.append(("replace", Path(dst).name))
        return real_replace(src, dst)

    def link(src, dst):
        seen.append(("link", Path(dst).name))
        return real_link(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    monkeypatch.setattr(files.os, "link", link)
    return seen


def test_a_save_is_synced_before_it_takes_its_name_and_its_folder_after(tmp_path, calls):
    files.write_text(tmp_path / "song.txt", "1 2 3\n")
    assert calls == [("fsync", "file"), ("replace", "song.txt"), ("fsync", "folder")]
    assert (tmp_path / "song.txt").read_text() == "1 2 3\n"
    calls.clear()
    files.write_bytes(tmp_path / "take.mid", b"MThd", exclusive=True)
    assert calls == [("fsync", "file"), ("link", "take.mid"), ("fsync", "folder")]


def test_what_a_writer_closed_is_synced_too(tmp_path, calls):
    """A writer that opens and closes the file itself (soundfile, mido) gets it synced."""
    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(b"x" * 100)

    files.write_with(tmp_path / "a.wav", writer)
    assert calls[0] == ("fsync", "file") and (tmp_path / "a.wav").read_bytes() == b"x" * 100


def test_an_exclusive_save_never_overwrites(tmp_path):
    (tmp_path / "song.txt").write_text("mine\n")
    with pytest.raises(files.NameTaken, match="song.txt exists already"):
        files.write_text(tmp_path / "song.txt", "theirs\n", exclusive=True)
    assert (tmp_path / "song.txt").read_text() == "mine\n"
    assert [p.name for p in tmp_path.iterdir()] == ["song.txt"]  # no partial file left


def text(value):
    return files.text_writer(value)


def test_save_new_takes_the_next_name_when_one_appears_between_the_check_and_the_claim(
        tmp_path):
    """The other save lands after this one found `tune` free and before it claims it: both
    are kept, this one as tune-2 (a check and a rename would have overwritten the other)."""
    def sneaky(tmp: Path) -> None:
        if not (tmp_path / "tune.txt").exists():
            files.write_text(tmp_path / "tune.txt", "the other save\n")
        tmp.write_text("this save\n")

    stem = files.save_new("tune", lambda s: [(tmp_path / f"{s}.txt", sneaky)])
    assert stem == "tune-2"
    assert (tmp_path / "tune.txt").read_text() == "the other save\n"
    assert (tmp_path / "tune-2.txt").read_text() == "this save\n"


def test_save_new_lets_go_of_a_half_claimed_pair(tmp_path, monkeypatch):
    """The MIDI claimed, the song's name then found taken: the MIDI is let go again and both
    are saved under the next name together."""
    (tmp_path / "takes").mkdir()
    (tmp_path / "tune.txt").write_text("someone else's\n")  # appears after the check

    def plan(stem):
        return [(tmp_path / "takes" / f"{stem}.mid", text(f"midi {stem}\n")),
                (tmp_path / f"{stem}.txt", text(f"song {stem}\n"))]

    real = Path.exists
    monkeypatch.setattr(Path, "exists",
                        lambda self: False if self.name == "tune.txt" else real(self))
    stem = files.save_new("tune", plan)
    monkeypatch.undo()
    assert stem == "tune-2"
    assert sorted(p.name for p in (tmp_path / "takes").iterdir()) == ["tune-2.mid"]
    assert (tmp_path / "tune.txt").read_text() == "someone else's\n"
    assert (tmp_path / "tune-2.txt").read_text() == "song tune-2\n"


def test_save_new_finishes_a_save_cut_short_under_its_first_name(tmp_path):
    (tmp_path / "tune.mid").write_text("midi tune\n")  # what the killed save got to

    def plan(stem):
        return [(tmp_path / f"{stem}.mid", text(f"midi {stem}\n")),
                (tmp_path / f"{stem}.txt", text(f"song {stem}\n"))]

    assert files.save_new("tune", plan, first="tune") == "tune"
    assert (tmp_path / "tune.txt").read_text() == "song tune\n"
    # not its bytes: someone else's file there is never taken for its own
    (tmp_path / "b.mid").write_text("another take\n")
    assert files.save_new("b", plan, first="b") == "b-2"
    assert (tmp_path / "b.mid").read_text() == "another take\n"


def test_many_saves_of_one_name_at_once_keep_every_one(tmp_path):
    start = threading.Barrier(8)
    stems = []

    def save(index: int) -> None:
        start.wait()
        stems.append(files.save_new("tune", lambda s: [(tmp_path / f"{s}.txt",
                                                          text(f"take {index}\n"))]))

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(stems)) == 8
    kept = sorted(p.read_text() for p in tmp_path.glob("*.txt"))
    assert kept == sorted(f"take {i}\n" for i in range(8))


def test_a_partial_file_is_named_by_its_process(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(tmp_path / "song.wav") as tmp:
            assert tmp.name.startswith(f".song.{os.getpid()}.") and tmp.name.endswith(".part.wav")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # removed on the way out


def gone_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_next_save_removes_the_partial_files_of_processes_that_are_gone(tmp_path):
    dead = tmp_path / f".song.{gone_pid()}.abcd_123.part.wav"
    alive = tmp_path / f".song.{os.getppid()}.abcd_123.part.wav"  # a running process's
    old = tmp_path / ".song.abcd_123.part.txt"  # an older synth's, without a process id
    young = tmp_path / ".tune.abcd_123.part.txt"
    other = tmp_path / ".hidden.txt"  # not a partial file at all
    for path in (dead, alive, old, young, other):
        path.write_bytes(b"half")
    os.utime(old, (0, 0))
    assert files.partial_leftovers(tmp_path) == sorted([dead, old])
    files.write_text(tmp_path / "new.txt", "1\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [alive.name, young.name, other.name, "new.txt"])


def run_python(code: str, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_during_a_save_removes_the_partial_file(tmp_path):
    process = run_python("""
        import time
        from synth import files
        try:
            with files.atomic_path(files.Path("song.wav")) as tmp:
                tmp.write_bytes(b"half a song")
                print("writing", flush=True)
                time.sleep(30)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """, tmp_path)
    assert process.stdout.readline() == "writing\n"
    assert len(list(tmp_path.glob(".song.*.part.wav"))) == 1
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert out == "interrupted\n", err
    assert list(tmp_path.iterdir()) == []


def test_sigterm_outside_a_save_keeps_its_usual_meaning(tmp_path):
    process = run_python("""
        import signal, time
        from synth import files
        files.write_text(files.Path("a.txt"), "1\\n")
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        print("saved", flush=True)
        time.sleep(30)
    """, tmp_path)
    assert process.stdout.readline() == "saved\n"
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    assert process.returncode == -signal.SIGTERM
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_growing_file_appears_with_its_beginning(tmp_path):
    handle = files.open_growing(tmp_path / "log.jsonl", lambda f: f.write(b"head\n"))
    assert (tmp_path / "log.jsonl").read_bytes() == b"head\n"
    handle.write(b"more\n")
    handle.close()
    assert (tmp_path / "log.jsonl").read_bytes() == b"head\nmore\n"
    assert [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]


def test_move_new_claims_a_free_name(tmp_path):
    (tmp_path / "s.wav").write_bytes(b"someone else's")
    source = tmp_path / ".s.x.tmp.wav"
    source.write_bytes(b"session")
    assert files.move_new(source, tmp_path, "s", ".wav") == tmp_path / "s-2.wav"
    assert (tmp_path / "s.wav").read_bytes() == b"someone else's"
    assert (tmp_path / "s-2.wav").read_bytes() == b"session" and not source.exists()


def test_a_sync_in_the_background_waits_for_nothing(tmp_path, monkeypatch):
    slow = threading.Event()
    monkeypatch.setattr(files.os, "fsync", lambda fd: slow.wait(5))
    with open(tmp_path / "f", "wb") as handle:
        sync = files.BackgroundSync(handle)
        began = time.monotonic()
        sync.sync()
        sync.sync()  # one at a time: this one is dropped, the first covers it
        assert time.monotonic() - began < 1
        slow.set()
        sync.close()


def test_held_interrupts_wait_for_the_outermost_hold():
    """A save inside a save (record's two files) is not cut between them by a Ctrl-C that
    came during the inner one: it takes effect once the outer one is done."""
    done = []
    with pytest.raises(KeyboardInterrupt):
        with files.no_interrupts():
            with files.no_interrupts():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)
            done.append("inner")
            done.append("outer")
    assert done == ["inner", "outer"]
