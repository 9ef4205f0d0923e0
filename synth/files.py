"""Saving without ever leaving a file half-written, and never overwriting what exists.

Every file synth saves whole goes through `atomic_path` (or `write_with` and the helpers on
it): written under a hidden temporary name `.NAME.PID.XXXXXXXX.part.SUFFIX` beside its final
name, flushed and synced to the disk, moved into place in one rename (or claimed with a hard
link, which refuses a name that appeared meanwhile), and its folder synced after, so that a
crash or a power cut leaves either the old file or the whole new one under the final name.
SIGTERM while a file is written ends the write the way Ctrl-C does (the partial file is
removed); what a process killed outright (SIGKILL, a power cut) leaves, the next save into that
folder removes, once the process whose id is in the name is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO
from pathlib import Path
from synth.errors import SynthError

PART = ".part"
# `.STEM.PID.XXXXXXXX.part[.SUFFIX]`: mkstemp's eight characters after the writer's process id.
_PARTIAL = re.compile(r"^\..*\.(?P<pid>\d+)\.[a-z0-9_]{8}\.part(\.[^.]+)?$")
# What versions before the process id was in the name left: removed once this old.
_OLD_PARTIAL = re.compile(r"^\..*\.[a-z0-9_]{8}\.part(\.[^.]+)?$")
OLD_PARTIAL_AGE = 3600.0  # seconds
# Folder-sync errors of file systems that cannot sync a folder (nothing to do there).
_NO_FOLDER_SYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EACCES,
                   errno.EISDIR}
_swept: set[Path] = set()
_swept_lock = threading.Lock()


class NameTaken(SynthError):
    """An exclusive save found its name taken (by another save, between a check and the write)."""


def sync_file(path: Path) -> None:
    """Flush a written file's data to the disk (what a writer closed is still in the cache)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries to the disk, so that a rename or a new name in it survives a
    power cut (the file's own sync does not cover the name it has)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        if exc.errno in _NO_FOLDER_SYNC:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_FOLDER_SYNC:
            raise
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def partial_leftovers(folder: Path, now: float | None = None) -> list[Path]:
    """The `.part` files in `folder` whose writer is gone: its process id names no process (a
    pid reused since only delays the clean-up), or, for names without one, untouched for
    OLD_PARTIAL_AGE seconds. A file a live process is writing is never among them."""
    now = time.time() if now is None else now
    found = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(".") or PART not in entry.name:
            continue
        match = _PARTIAL.match(entry.name)
        with contextlib.suppress(OSError):
            if not entry.is_file(follow_symlinks=False):
                continue
            if match is not None:
                if not _pid_alive(int(match["pid"])):
                    found.append(Path(entry.path))
            elif _OLD_PARTIAL.match(entry.name) and \
                    now - entry.stat(follow_symlinks=False).st_mtime >= OLD_PARTIAL_AGE:
                found.append(Path(entry.path))
    return sorted(found)


def remove_leftovers(folder: Path) -> list[Path]:
    """Remove what `partial_leftovers` finds in `folder`; the paths removed."""
    removed = []
    for path in partial_leftovers(folder):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _sweep_once(folder: Path) -> None:
    """Remove the folder's leftovers the first time this process saves into it."""
    key = folder.resolve()
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    with contextlib.suppress(OSError):
        remove_leftovers(folder)


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Have SIGTERM raise KeyboardInterrupt inside the block, as Ctrl-C does, so that clean-up
    runs (a handler set by someone else, or a thread other than the main one, is left alone)."""
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            yield
            return
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread: signals cannot reach this code anyway
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def atomic_path(path: Path, exclusive: bool = False,
                move: Callable[[Path, Path], object] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; once the block succeeds, sync it to the disk and
    move it onto `path` (or, `exclusive`, claim `path` only if no file has that name: else
    NameTaken; or call `move(tmp, path)`, which leaves no `tmp` behind), then sync the folder.
    An error, Ctrl-C or SIGTERM inside the block leaves whatever was at `path` untouched and
    removes the temporary file.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthError(f"{folder}: cannot create the folder: {exc.strerror}") from None
    _sweep_once(folder)
    # Keep the real suffix last: writers such as soundfile pick the format from it.
    # `.part`, not the `.tmp` of earlier versions: journal.recover_leftovers takes those
    # for a killed session's files, and a killed compose's partial WAV is no session.
    tmp_path: Path | None = None
    with sigterm_as_ctrl_c():
        try:
            with no_interrupts():  # a signal just after the file is made still finds its name
                fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}.",
                                           suffix=f"{PART}{path.suffix}", dir=folder)
                tmp_path = Path(tmp)
                os.close(fd)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; saved files are ordinary
            yield tmp_path
            sync_file(tmp_path)
            (move or (_claim if exclusive else os.replace))(tmp_path, path)
            sync_folder(folder)
        except BaseException:
            if tmp_path is not None:
                with contextlib.suppress(OSError):
                    tmp_path.unlink()
            raise


def _claim(tmp: Path, path: Path, same_is_mine: bool = False) -> bool:
    """Give the written `tmp` the name `path` only if no file has it (a hard link refuses an
    existing name in one step, where a check and a rename leave a gap between them); True once
    done. `same_is_mine`: a file there already that holds exactly these bytes (a save cut
    short, finished now) counts as this one, False, instead of NameTaken."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        if same_is_mine and _same_bytes(tmp, path):
            tmp.unlink()
            return False
        raise NameTaken(f"{path} exists already") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # A file system without hard links: an empty file claims the name, the rename fills it.
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise NameTaken(f"{path} exists already") from None
        os.replace(tmp, path)
        return True
    tmp.unlink()
    return True


def _same_bytes(one: Path, other: Path) -> bool:
    import filecmp

    try:
        return filecmp.cmp(one, other, shallow=False)
    except OSError:
        return False


def text_writer(text: str) -> Callable[[Path], None]:
    """A writer for `write_with` or `save_new` that writes `text` as UTF-8."""
    return lambda tmp: tmp.write_text(text, encoding="utf-8") and None


def write_text(path: Path, text: str, exclusive: bool = False) -> None:
    """Write a text file atomically and durably (UTF-8); `exclusive`: only as a new file."""
    write_with(path, text_writer(text), exclusive)


def write_bytes(path: Path, data: bytes, exclusive: bool = False) -> None:
    """Write a binary file atomically and durably; `exclusive`: only as a new file."""
    write_with(path, lambda tmp: tmp.write_bytes(data), exclusive)


class NoSpace(SynthError):
    """The disk is full: the write failed, what was saved before is intact."""


def cannot_write(path: Path, exc: OSError) -> SynthError:
    """The one-line error for a failed write; NoSpace when the disk is full."""
    kind = NoSpace if exc.errno == errno.ENOSPC else SynthError
    return kind(f"{path}: cannot write: {exc.strerror or exc}")


def write_with(path: Path, writer: Callable[[Path], object], exclusive: bool = False) -> None:
    """Call `writer(tmp_path)` and move the result onto `path` atomically and durably;
    `exclusive`: claim `path` only if it is free, else NameTaken (never an overwrite)."""
    try:
        with atomic_path(path, exclusive) as tmp:
            writer(tmp)
    except OSError as exc:
        raise cannot_write(path, exc) from None


Writers = Sequence[tuple[Path, "Callable[[Path], object] | None"]]


def save_new(name: str, make: Callable[[str], Writers], first: str | None = None) -> str:
    """Save new files under one free name; the name used.

    `make(stem)` lists the files to save under that stem, each (final path, writer), a writer
    None for a name that must only be free. The stems tried are `first` (if given), `name`,
    `name-2`, `-3`, ...: the first at which every file could be claimed as new (a hard link,
    so two saves racing for one name both keep their files, under two names). At `first`, a
    file that holds exactly what it would be given counts as claimed: a save cut short there
    (a recovery passes the name its journal says the save had begun under) is finished, not
    made twice. Files claimed for a stem that then fails are removed again.
    """
    tried = set()
    for stem in _stems(name, first):
        if stem in tried:
            continue
        tried.add(stem)
        resumed = stem == first  # a save cut short: its own files may be there already
        planned = list(make(stem))
        # a name seen taken is passed over before anything is written; the claim still decides
        if any((writer is None or not resumed) and path.exists() for path, writer in planned):
            continue
        claimed: list[Path] = []
        try:
            for path, writer in planned:
                if writer is None:
                    continue
                made: list[bool] = []
                try:
                    with atomic_path(path, move=lambda tmp, final: made.append(
                            _claim(tmp, final, same_is_mine=resumed))) as tmp:
                        writer(tmp)
                except OSError as exc:
                    raise cannot_write(path, exc) from None
                if made and made[0]:
                    claimed.append(path)
        except BaseException as exc:
            for path in claimed:  # taken, or a failure half-way: no half of a save under names
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            if isinstance(exc, NameTaken):
                continue
            raise
        return stem
    raise AssertionError("unreachable: the stems never run out")


def _stems(name: str, first: str | None) -> Iterator[str]:
    if first:
        yield first
    yield name
    number = 2
    while True:
        yield f"{name}-{number}"
        number += 1


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Stop before overwriting an existing output unless the user asked for it."""
    if Path(path).exists() and not overwrite:
        raise SynthError(f"{path} exists already: choose another name or pass --overwrite")


def unique_path(folder: Path, name: str, suffix: str) -> Path:
    """`folder/name.suffix`, or `folder/name-2.suffix`, `-3`, ... if that is taken (a guess,
    for a default shown to the user: a save that must not overwrite claims it with
    `save_new` or `exclusive`)."""
    return Path(folder) / f"{free_name(name, [(Path(folder), suffix)])}{suffix}"


def free_name(name: str, places: Sequence[tuple[Path, str]]) -> str:
    """`name`, or `name-2`, `-3`, ...: the first that no (folder, suffix) place holds yet."""
    return next(stem for stem in _stems(name, None)
                if not any((Path(folder) / f"{stem}{suffix}").exists() for folder, suffix in places))


def slug(text: str) -> str:
    """A file-name-safe version of a title: 'Fare You Well!' -> 'fare-you-well'."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[:60] or "song"


@contextlib.contextmanager
def no_interrupts() -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM) back while files are written; it takes effect just after.

    The handlers are swapped rather than the signals masked, because a signal may land on any
    thread of the process and Python runs its handler on the main thread regardless.
    """
    caught: list[int] = []

    def hold(signum, frame) -> None:
        caught.append(signum)

    hold.holding = True  # type: ignore[attr-defined]
    if getattr(signal.getsignal(signal.SIGINT), "holding", False):
        yield  # inside another no_interrupts: that one lets the signal through, at its end
        return
    try:
        previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals cannot reach this code anyway
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt


def move_new(source: Path, folder: Path, name: str, suffix: str) -> Path:
    """Move a finished file into `folder` as NAME.SUFFIX, or NAME-2, -3, ... if taken,
    claiming the name with a hard link (never over a file that appeared meanwhile), and sync
    the folder; the path it now has."""
    source, folder = Path(source), Path(folder)
    sync_file(source)
    for stem in _stems(name, None):
        target = folder / f"{stem}{suffix}"
        if target.exists():
            continue
        try:
            _claim(source, target)
        except NameTaken:
            continue
        sync_folder(folder)
        if source.parent != folder:
            sync_folder(source.parent)
        return target
    raise AssertionError("unreachable: the stems never run out")


def open_growing(path: Path, start: Callable[[BinaryIO], object],
                 exclusive: bool = False) -> BinaryIO:
    """Open `path` for a file that grows under its final name as it is written (a session's
    WAV or log): `start(file)` writes its beginning (a header) under a temporary name, which
    is synced and moved onto `path` in one rename, so `path` is never seen empty or without
    its beginning (`exclusive`: claimed, never over a file of that name, else NameTaken).
    Returns the file, open (binary, buffered) where `start` left it."""
    path = Path(path)
    handle: list[BinaryIO] = []

    def begin(tmp: Path) -> None:
        handle.append(open(tmp, "r+b"))
        start(handle[0])
        handle[0].flush()

    try:
        with atomic_path(path, exclusive) as tmp:
            begin(tmp)
    except BaseException as exc:
        if handle:
            handle[0].close()
        if isinstance(exc, OSError):
            raise cannot_write(path, exc) from None
        raise
    return handle[0]


class BackgroundSync:
    """Syncs an open file to the disk on a thread of its own, one sync at a time, so that a
    file written by a live session reaches the disk as it grows without the session waiting
    on the disk."""

    def __init__(self, file: BinaryIO):
        self._file = file
        self._thread: threading.Thread | None = None

    def sync(self) -> None:
        """Start a sync unless one is running (that one covers what was written before it)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="synth-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # closed meanwhile: close() syncs
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Wait for a sync under way; the caller then closes the file (and syncs it once)."""
        if self._thread is not None:
            self._thread.join()
