"""Crash safety: what a take or a session writes to disk as it goes, and the recovery that
reads it back after the process died (a crash, the out-of-memory killer, a power cut).

- A take's journal (`TakeJournal`): the raw MIDI messages of `synth record`, one line each,
  appended to a hidden file beside the takes as they are played, flushed at once and synced
  to the disk at least every half second. The recording holds a lock on it, so a journal
  that nobody holds is a take that never finished; `unfinished_takes` reads those back, up
  to the last whole line.
- A session's files (`SessionWav`, `SessionLog`): written under their final names as the
  session goes (never seen empty: each appears with its header in one rename), the WAV's
  header rewritten after every block by the standard library's `wave`, the log a line at a
  time, each in one write; both synced to the disk as they grow. A killed session leaves a
  WAV that every reader opens, to within a block of the kill, and a log with every answer.
- Leftovers of sessions killed before this (hidden `.NAME.XXXXXXXX.tmp.wav` / `.tmp.jsonl`,
  grown under temporary names): `recover_leftovers` moves them into place, header mended.

Saving a file whole stays with files.py's atomic writes; this module is for what grows.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import math
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import mido

from synth import files
from synth.errors import SynthError

JOURNAL_SUFFIX = ".journal"
FORMAT = 1
SYNC_EVERY = 0.5  # seconds: the most of a take that a power cut can take away
LEFTOVER_AGE = 60.0  # seconds: a hidden temporary file untouched this long is nobody's


# --- a take's journal ---------------------------------------------------------------------


@dataclass
class JournalTake:
    """A take read back from its journal."""

    path: Path
    bpm: float
    name: str
    source: str
    day: date
    messages: list[tuple[float, mido.Message]] = field(default_factory=list)
    seconds: float = 0.0  # how long the take is known to have lasted
    saving: str | None = None  # the name its save had picked, if the save had begun


class TakeJournal:
    """The journal of a take being recorded into `folder`: each message is one JSON line
    `[seconds, byte, byte, ...]`, written and flushed as it is played (a process killed at any
    moment loses nothing already written), synced to the disk every SYNC_EVERY seconds with a
    `[seconds]` line that also tells how long the take lasted.

    A failed write (the disk full) stops the journal, not the take: `failed` says why.
    """

    def __init__(self, folder: Path, name: str, bpm: float, source: str,
                 day: date | None = None):
        folder = Path(folder)
        self.failed = ""
        self._synced = -math.inf
        header = {"take": FORMAT, "bpm": bpm, "name": name, "source": source,
                  "date": (day or date.today()).isoformat()}

        def begin(raw) -> None:
            fcntl.flock(raw.fileno(), fcntl.LOCK_EX)  # let go by the system when it ends
            raw.write((json.dumps(header) + "\n").encode("utf-8"))

        # Locked and begun under a temporary name, then claimed (never over another journal):
        # no recovery ever sees it unlocked, and the name survives a power cut.
        self.path = folder / f".{files.slug(name)}.{secrets.token_hex(4)}{JOURNAL_SUFFIX}"
        raw = files.open_growing(self.path, begin, exclusive=True)
        self.file = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")

    @classmethod
    def reopen(cls, path: Path) -> TakeJournal:
        """The journal of a take that died, to finish saving it (the caller holds its lock,
        from `unfinished_takes`). A last line cut mid-write is cut off first."""
        log = cls.__new__(cls)
        log.path = Path(path)
        log.failed = ""
        log._synced = -math.inf
        try:
            log.file = open(log.path, "r+", encoding="utf-8")
            whole = log.path.read_bytes().rfind(b"\n") + 1
            log.file.truncate(whole)
            log.file.seek(whole)
        except OSError as exc:
            raise files.cannot_write(log.path, exc) from None
        return log

    def add(self, seconds: float, msg: mido.Message) -> None:
        """A message played `seconds` into the take."""
        self._write(json.dumps([round(seconds, 6), *msg.bytes()]), seconds)

    def tick(self, seconds: float) -> None:
        """The take goes on at `seconds`: sync it if that is due."""
        if seconds - self._synced >= SYNC_EVERY:
            self._write(json.dumps([round(seconds, 6)]), seconds)

    def saving(self, stem: str) -> None:
        """The take is being saved as `stem`: a recovery finishes that save, not another."""
        self._write(json.dumps({"saving": stem}), self._synced, sync=True)

    def _write(self, line: str, seconds: float, sync: bool = False) -> None:
        if self.failed or self.file.closed:
            return
        try:
            self.file.write(line + "\n")
            self.file.flush()
            if sync or seconds - self._synced >= SYNC_EVERY:
                os.fsync(self.file.fileno())
                self._synced = max(seconds, self._synced)
        except OSError as exc:
            self.failed = exc.strerror or str(exc)

    def close(self) -> None:
        """Let the journal go, kept on disk (its take was not saved)."""
        if not self.file.closed:
            with contextlib.suppress(OSError):
                self.file.close()

    def remove(self) -> None:
        """The take is saved: the journal is no longer needed."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def read_take(path: Path) -> JournalTake | None:
    """A journal read up to its last whole line (a write cut short by a kill is dropped);
    None if not even its first line was written (nothing was played)."""
    with open(path, "rb") as handle:
        data = handle.read()
    lines = data.split(b"\n")[:-1]  # the part after the last newline was cut mid-write
    try:
        header = json.loads(lines[0])
        take = JournalTake(Path(path), float(header["bpm"]), str(header["name"]),
                           str(header["source"]), date.fromisoformat(header["date"]))
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    for line in lines[1:]:
        try:
            record = json.loads(line)
            if isinstance(record, dict):
                take.saving = str(record["saving"])
                continue
            seconds = float(record[0])
            if len(record) > 1:
                take.messages.append((seconds, mido.Message.from_bytes(record[1:])))
        except (ValueError, KeyError, TypeError, IndexError):
            break  # not a whole line: nothing after it was written whole either
        take.seconds = max(take.seconds, seconds)
    return take


def unfinished_takes(folder: Path) -> Iterator[JournalTake]:
    """The journals in `folder` that no recording holds, oldest first, each locked
    while the caller handles it (so two recoveries never save one take twice). A journal cut
    before its first line comes as a take with no messages. The caller removes each journal
    once its take is saved (`TakeJournal.reopen(path).remove()`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob(f".*{JOURNAL_SUFFIX}"), key=_age):
        if path.name.endswith(files.PART + JOURNAL_SUFFIX):
            continue  # a journal being begun (files.atomic_path), not one yet
        try:
            handle = open(path, "rb")
        except FileNotFoundError:  # another recovery got there first
            continue
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a take being recorded now
            if not path.exists():
                continue
            yield read_take(path) or JournalTake(path, 0.0, "", "", date.today())


def _age(path: Path) -> tuple[float, str]:
    """Oldest first, so that takes recovered together are numbered in the order played."""
    try:
        return path.stat().st_mtime, path.name
    except FileNotFoundError:
        return math.inf, path.name


# --- a session's files --------------------------------------------------------------------


class SessionWav:
    """A session's WAV (16-bit PCM), written under its final name as the session goes with the
    standard library's `wave`, which rewrites the header's sizes after every block: a kill at
    any moment leaves a WAV whose header counts only frames wholly in the file, so every reader
    opens it. The file is synced to the disk every SYNC_EVERY seconds of sound, off the
    session's thread, so a power cut takes at most about that much."""

    def __init__(self, path: Path, rate: int, channels: int):
        import wave

        self.path = Path(path)
        self.rate = rate
        made: list[wave.Wave_write] = []

        def header(file) -> None:
            sound = wave.open(file, "wb")
            sound.setnchannels(channels)
            sound.setsampwidth(2)
            sound.setframerate(rate)
            sound.writeframes(b"")  # the header, for no frames yet
            made.append(sound)

        self._raw = files.open_growing(self.path, header)
        self.file = made[0]
        self._sync = files.BackgroundSync(self._raw)
        self._every = int(SYNC_EVERY * rate)
        self._since = 0

    def write(self, block) -> None:
        """Append a block of float frames (frames, channels), converted to 16 bits as
        libsndfile converts them (the same samples soundfile would write)."""
        from synth.sound.render import pcm16

        try:
            self.file.writeframes(pcm16(block).tobytes())
        except OSError as exc:  # a full disk
            raise SynthError(f"{files.cannot_write(self.path, exc)}; the session so far is "
                             "saved in it") from None
        self._since += len(block)
        if self._since >= self._every:
            self._since = 0
            self._sync.sync()

    def close(self) -> Path:
        """Finish the file (its final header) and sync it to the disk."""
        self._sync.close()
        try:
            self.file.close()  # wave leaves a file it was given open
            self._raw.flush()
            os.fsync(self._raw.fileno())
        except OSError as exc:
            raise files.cannot_write(self.path, exc) from None
        finally:
            self._raw.close()
        return self.path


class SessionLog:
    """A session's log of JSON lines, created under its final name. Each line goes to the file
    in one write (no buffer holds half of it), so a kill leaves whole lines only; each is
    synced to the disk off the session's thread."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.file = files.open_growing(self.path, lambda file: None)
        self._sync = files.BackgroundSync(self.file)

    def write(self, line: str) -> None:
        try:
            self.file.write((line + "\n").encode("utf-8"))
            self.file.flush()  # the whole line in one go (a buffered write loops until done)
        except OSError as exc:
            raise files.cannot_write(self.path, exc) from None
        self._sync.sync()

    def close(self) -> Path:
        self._sync.close()
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as exc:
            raise files.cannot_write(self.path, exc) from None
        finally:
            self.file.close()
        return self.path


# --- leftovers of sessions killed under temporary names -----------------------------------

# The temporary names sessions grew under before they wrote under their final names
# (files.atomic_path's, then): mkstemp's eight random characters between the stem and
# `.tmp.SUFFIX`. atomic_path now ends its names in `.part.SUFFIX`, so a file killed half-written
# by compose or import is never taken for a session's.
_LEFTOVER = re.compile(r"^\.(?P<stem>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>\.wav|\.jsonl)$")


@dataclass
class Recovered:
    leftover: Path
    path: Path
    what: str  # "42.0 s of sound", "7 answers"


def leftovers(folder: Path, now: float | None = None) -> list[Path]:
    """Hidden `.NAME.XXXXXXXX.tmp.wav` / `.tmp.jsonl` files in `folder` untouched for
    LEFTOVER_AGE seconds: what older sessions killed mid-way left (a file written now by a
    running command is younger)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    found = []
    for path in sorted(folder.iterdir()):
        if _LEFTOVER.match(path.name) and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime >= LEFTOVER_AGE:
                    found.append(path)
    return found


def recover_leftovers(folder: Path) -> list[Recovered]:
    """Move each leftover in `folder` to its name (numbered if taken): a WAV with its header
    mended to every whole frame written, a log to its last whole line. One that cannot be
    read is left where it is."""
    recovered = []
    for path in leftovers(folder):
        match = _LEFTOVER.match(path.name)
        stem, suffix = match["stem"], match["suffix"]
        try:
            if suffix == ".wav":
                what = _mend_wav(path)
                target = files.move_new(path, path.parent, stem, suffix)
            else:
                whole = path.read_bytes().split(b"\n")[:-1]
                data = b"".join(line + b"\n" for line in whole)
                saved = files.save_new(stem, lambda name: [
                    (path.parent / f"{name}{suffix}", lambda tmp: tmp.write_bytes(data))])
                target = path.parent / f"{saved}{suffix}"
                path.unlink()
                what = f"{len(whole)} answers"
        except (OSError, RuntimeError) as exc:
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise files.cannot_write(path, exc) from None  # kept, for once there is room
            continue  # not readable as a WAV: left as it is
        recovered.append(Recovered(path, target, what))
    return recovered


def _mend_wav(path: Path) -> str:
    """Rewrite a WAV header for every whole frame in the file (libsndfile reads a header
    that was never finished as running to the end of the file)."""
    import soundfile

    with soundfile.SoundFile(path, "r+") as sound:
        sound.seek(0, soundfile.SEEK_END)
        seconds = sound.frames / sound.samplerate
    return f"{seconds:.1f} s of sound"
