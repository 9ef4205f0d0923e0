"""Importing many MIDI files at once: parsed on every core, named and saved in order.

Parsing (midi.import_midi) runs in a process pool; naming and writing stay in this process,
one file after another in the order the files were given, so the song files, their `-2`, `-3`
numbering and the reports are the same as a one-by-one import. One file that fails, raises
anything at all, or even kills its worker process, is that file's one error; the others go on.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from synth import files
from synth.music import midi, songs
from synth.errors import SynthError
from synth.music.songs import Song

# Below this many files one process is faster: starting the workers (a fork each, ~10 ms) and
# sending songs back costs more than a file's parse (~1-3 ms for a small file). Measured with
# bench/import.py on 2 cores: the pool wins from a few dozen files on.
POOL_THRESHOLD = 32
WINDOW_PER_WORKER = 16  # files in flight per worker: keeps workers busy, memory bounded


@dataclass
class Imported:
    """One file's outcome: a saved song and its report, or the error that stopped it."""

    path: Path
    song: Song | None = None
    report: midi.ImportReport | None = None
    error: str | None = None
    out: Path | None = None
    skipped: bool = False  # the dataset held this song already (same source, same notes)

    @property
    def ok(self) -> bool:
        return self.error is None


def parse(path: Path) -> Imported:
    """Parse one file, turning any failure at all into that file's one-line error."""
    try:
        song, report = midi.import_midi(path)
    except SynthError as exc:
        return Imported(path, error=str(exc))
    except Exception as exc:  # a bug or a file no check foresaw: still only this file's error
        return Imported(path, error=f"{path}: could not import ({type(exc).__name__}: {exc})")
    return Imported(path, song=song, report=report)


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the parent alone handles it and stops the pool.
    # SIGTERM kills a worker outright (the parent's, raising KeyboardInterrupt, is inherited).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, initializer=_ignore_interrupts)


def _done(result: Imported) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


def _alone(path: Path, parser: Callable[[Path], Imported]) -> Imported:
    """Parse one file in a worker of its own: if that worker dies, the file is the culprit."""
    with _pool(1) as solo:
        try:
            return solo.submit(parser, path).result()
        except BrokenProcessPool:
            return Imported(path, error=f"{path}: could not import (the worker process "
                                         f"reading it died)")


def parse_many(paths: Sequence[Path], workers: int | None = None,
               parser: Callable[[Path], Imported] = parse) -> Iterator[Imported]:
    """Parse the files, yielding one Imported per path in the order given.

    With more than POOL_THRESHOLD files and more than one worker (default: every core) the
    files are parsed in a process pool. If a worker process dies, the pool is replaced, every
    file that was in flight is parsed again in a worker of its own (so only the file that
    kills a worker fails), and the rest carry on in the new pool.
    """
    paths = [Path(p) for p in paths]
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(paths) <= POOL_THRESHOLD:
        for path in paths:
            yield parser(path)
        return
    queue = deque(paths)
    pending: deque[tuple[Path, Future]] = deque()
    pool = _pool(workers)
    try:
        while queue or pending:
            while queue and len(pending) < workers * WINDOW_PER_WORKER:
                path = queue.popleft()
                pending.append((path, pool.submit(parser, path)))
            path, future = pending[0]
            try:
                result = future.result()
            except BrokenProcessPool:
                pool.shutdown(wait=True)
                pool = _pool(workers)
                # Futures that finished before the crash keep their results; the lost ones are
                # each retried alone, in order.
                pending = deque((p, f if f.done() and not f.cancelled() and f.exception() is None
                                 else _done(_alone(p, parser))) for p, f in pending)
                continue
            pending.popleft()
            yield result
    finally:
        # Also on Ctrl-C or when the caller stops early: drop the queued files, wait for the
        # few being parsed (milliseconds), leave no worker behind.
        pool.shutdown(wait=True, cancel_futures=True)


def import_many(paths: Sequence[Path], dataset: Path, workers: int | None = None,
                parser: Callable[[Path], Imported] = parse) -> Iterator[Imported]:
    """Import MIDI files into `dataset`, yielding each file's outcome in order as it is saved.

    Names are picked and songs written here, one at a time and in order, so the result is
    the same as importing the files one by one; each write is atomic and durable (Ctrl-C,
    SIGTERM or a kill leaves the songs already saved and no half-written one). A song the dataset holds already,
    the same file to the letter (same source, same notes), is `skipped`: an import run again
    after it was killed finishes the rest and writes nothing twice. A full disk stops it.
    """
    dataset = Path(dataset)
    with files.sigterm_as_ctrl_c():  # a polite kill stops like Ctrl-C: no partial file left
        yield from _import_in_order(paths, dataset, workers, parser)


def _import_in_order(paths: Sequence[Path], dataset: Path, workers: int | None,
                     parser: Callable[[Path], Imported]) -> Iterator[Imported]:
    saved: dict[bytes, Path] | None = None  # the dataset's songs by their text's digest
    for result in parse_many(paths, workers, parser):
        if result.ok:
            assert result.song is not None
            text = _digest(songs.format_song(result.song))
            if saved is None:
                saved = _songs_by_text(dataset)
            try:
                if text in saved:
                    out, result.skipped = saved[text], True
                else:
                    out = _save_new(dataset, result.song,
                                    files.slug(result.song.title or result.path.stem))
                    saved[text] = out
            except files.NoSpace:
                raise
            except SynthError as exc:
                result = Imported(result.path, error=str(exc))
            else:
                result.out = out
                if result.report is not None:
                    result.report.out = out
        yield result


def _save_new(dataset: Path, song: songs.Song, name: str) -> Path:
    """Save `song` as dataset/NAME.txt, numbered if taken, never over another file (a record
    or another import saving at the same moment keeps its song)."""
    song.events = songs.check_song(song.events, dataset / f"{name}.txt")
    write = files.text_writer(songs.format_song(song))
    stem = files.save_new(name, lambda stem: [(dataset / f"{stem}.txt", write)])
    return dataset / f"{stem}.txt"


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _songs_by_text(dataset: Path) -> dict[bytes, Path]:
    """Every song file of the dataset folder by its text's digest (none if there is no
    folder yet): read once per import, so checking a song costs no more as the folder grows."""
    if not dataset.is_dir():
        return {}
    found: dict[bytes, Path] = {}
    for path in songs.song_paths(dataset):
        try:
            found.setdefault(_digest(path.read_text(encoding="utf-8")), path)
        except (OSError, UnicodeDecodeError):
            continue  # not a song this import could have written
    return found
