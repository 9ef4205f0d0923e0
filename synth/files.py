"""Saving without ever leaving a file half-written, and never overwriting what exists."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from synth.errors import SynthError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A crash, an error or Ctrl-C inside the block leaves whatever was at `path` untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthError(f"{folder}: cannot create the folder: {exc.strerror}") from None
    # Keep the real suffix last: writers such as soundfile pick the format from it.
    # `.part`, not the `.tmp` of earlier versions: journal.recover_leftovers takes those
    # for a killed session's files, and a killed compose's partial WAV is no session.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; saved files are ordinary files
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (UTF-8)."""
    write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Write a binary file atomically."""
    write_with(path, lambda tmp: tmp.write_bytes(data))


class NoSpace(SynthError):
    """The disk is full: the write failed, what was saved before is intact."""


def cannot_write(path: Path, exc: OSError) -> SynthError:
    """The one-line error for a failed write; NoSpace when the disk is full."""
    kind = NoSpace if exc.errno == errno.ENOSPC else SynthError
    return kind(f"{path}: cannot write: {exc.strerror or exc}")


def write_with(path: Path, writer: Callable[[Path], object]) -> None:
    """Call `writer(tmp_path)` and move the result onto `path` atomically."""
    try:
        with atomic_path(path) as tmp:
            writer(tmp)
    except OSError as exc:
        raise cannot_write(path, exc) from None


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Stop before overwriting an existing output unless the user asked for it."""
    if Path(path).exists() and not overwrite:
        raise SynthError(f"{path} exists already: choose another name or pass --overwrite")


def unique_path(folder: Path, name: str, suffix: str) -> Path:
    """`folder/name.suffix`, or `folder/name-2.suffix`, `-3`, ... if that is taken."""
    return Path(folder) / f"{free_name(name, [(Path(folder), suffix)])}{suffix}"


def free_name(name: str, places: Sequence[tuple[Path, str]]) -> str:
    """`name`, or `name-2`, `-3`, ...: the first that no (folder, suffix) place holds yet."""
    candidate, number = name, 2
    while any((Path(folder) / f"{candidate}{suffix}").exists() for folder, suffix in places):
        candidate = f"{name}-{number}"
        number += 1
    return candidate


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
