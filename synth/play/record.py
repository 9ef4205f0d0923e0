"""`synth record`: one take from an input, saved as a song file and its raw MIDI take.

The song file holds the take's events, classes and lengths (see `take.Take`); the raw take
keeps every message as it was played, timing and velocity included, from the count-in's first
beat (the input is open before the count-in, so a pickup played during it is kept). Both are
saved the moment the take ends. Meanwhile the take streams into its journal
(synth.play.journal), so that a take whose process died is saved by the next `record` or by
`recover` (`recover_takes`), as it would have been.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import mido

from synth import files
from synth.play import journal
from synth.errors import SynthError
from synth.music.events import Event
from synth.play.inputs import Input, is_press
from synth.play.take import Take
from synth.music.midi import Note, take_to_midi
from synth.music.songs import Song, check_bpm, check_song, format_song

TAKES = "takes"


def check_count_in(beats: int) -> int:
    if not 0 <= beats <= 32:
        raise SynthError(f"--count-in {beats} is out of range: expected 0-32 beats")
    return beats


def check_seconds(seconds: float | None) -> float | None:
    if seconds is not None and not (0 < seconds <= 3600 and math.isfinite(seconds)):
        raise SynthError(f"--seconds {seconds:g} is out of range: expected above 0, up to 3600")
    return seconds


# How late a message may reach the queue after the time stamped on it (a replay thread
# waking up late, a busy callback thread): the take is only judged up to this long ago.
QUEUE_LAG = 0.05


def record_take(source: Input, bpm: float, seconds: float | None, count_in: int = 0,
                on_beat: Callable[[int], None] = lambda beat: None,
                on_message: Callable[[mido.Message], None] = lambda msg: None,
                on_start: Callable[[], None] = lambda: None,
                on_progress: Callable[[Take, float], None] = lambda take, now: None,
                log: journal.TakeJournal | None = None) -> Take:
    """Open `source`, count `count_in` beats in at the tempo, and listen until Enter, the end
    of a replay, `seconds` after the count-in, or Ctrl-C.

    The input is open before the count-in, so the grid starts on the count-in's first beat
    (not late by however long a port takes to open), the first downbeat after it is beat 1
    (`take.downbeat`), and notes played during the count-in (a pickup) are kept: the take's
    times run from the count-in's first beat. `on_beat(n)` is called on each count-in beat,
    n = count_in ... 1, and `on_start()` on beat 1.
    `on_message` sees every message as it comes; `on_progress(take, now)` is called after each
    one and every few hundredths of a second, with `now` in seconds into the take such that
    every message before it is in the take (for showing `take.decided(now)`).
    Ctrl-C ends the take like Enter does: what was played is returned, never lost. Each
    message also goes to the journal `log` as it comes, for a process that dies.
    """
    check_bpm(bpm)
    check_seconds(seconds)
    check_count_in(count_in)
    step = 60.0 / bpm
    take = Take(bpm=bpm, downbeat=count_in * step)
    source.start()
    begin = time.monotonic()
    downbeat = begin + take.downbeat
    deadline = downbeat + seconds if seconds is not None else math.inf
    counted, started = 0, False  # count-in beats said; beat 1 come
    try:
        while True:
            clock = time.monotonic()
            while counted < count_in and clock >= begin + counted * step:
                on_beat(count_in - counted)
                counted += 1
            if not started and clock >= downbeat:
                on_start()
                started = True
            mark = begin + counted * step if counted < count_in else \
                downbeat if not started else math.inf
            event = source.get(timeout=min(deadline - clock, QUEUE_LAG, mark - clock))
            if event is None and time.monotonic() < deadline:
                heard = take.messages[-1][0] if take.messages else 0.0
                now = max(time.monotonic() - begin - QUEUE_LAG, heard)
                if log is not None:
                    log.tick(now)
                on_progress(take, now)
                continue
            if event is None or event.time >= deadline:
                take.ended_by = f"{seconds:g} seconds"
                break
            if event.is_stop:
                take.ended_by = event.reason
                break
            # A replay's thread may stamp its first message a hair before `begin`.
            at = max(event.time - begin, 0.0)
            take.messages.append((at, event.message))
            if log is not None:
                log.add(at, event.message)
            on_message(event.message)
            on_progress(take, at)
    except KeyboardInterrupt:
        take.ended_by = "Ctrl-C"
    finally:
        source.close()
    end = min(time.monotonic(), deadline)
    take.seconds = max(end - begin, take.messages[-1][0] if take.messages else 0.0)
    return take


@dataclass
class Saved:
    song_path: Path | None  # None when every note lay outside C3-B4
    take_path: Path
    events: list[Event]
    outside: list[Note]


def save_take(take: Take, dataset: Path, name: str, source: str, day: date | None = None,
              log: journal.TakeJournal | None = None, stem: str | None = None) -> Saved | None:
    """Save the raw take and its song file; None when no note was played at all.

    Both are claimed as new files under the first free name (files.save_new), so two saves of
    one name at once (two studio tabs, the studio and `synth record`) keep both takes. The
    journal `log` of the take is removed once both are saved; if saving fails (a full disk)
    the error says the take is safe in it. `stem` is tried first: the name a recovery's save
    had begun under, whose files, if there and this take's to the byte, are kept as they are.
    """
    if not any(is_press(msg) for _, msg in take.messages):
        if log is not None:
            log.remove()
        return None
    events, outside = take.events()
    made = (day or date.today()).isoformat()

    def planned(candidate: str) -> list:
        if log is not None:
            log.saving(candidate)
        midi = take_to_midi(take.messages, take.bpm, name=candidate)
        song = Song(events=events, title=candidate, bpm=take.bpm,
                    source=f"recorded with synth record from {source}, {made}")
        return [(dataset / TAKES / f"{candidate}.mid", lambda tmp: midi.save(tmp)),
                (dataset / f"{candidate}.txt",
                 files.text_writer(format_song(song)) if events else None)]

    with files.no_interrupts():
        try:
            if events:
                events = check_song(events, dataset / f"{files.slug(name)}.txt")
            stem = files.save_new(files.slug(name), planned, first=stem)
        except SynthError as exc:
            if log is None:
                raise
            log.close()
            kept = f"safe in {log.path}" if not log.failed else \
                f"in {log.path} up to where that failed too ({log.failed})"
            raise type(exc)(f"{exc}; the take is {kept}: `synth recover` saves it once that "
                            "is fixed") from None
        if log is not None:
            log.remove()
    song_path = dataset / f"{stem}.txt"
    return Saved(song_path if events else None, dataset / TAKES / f"{stem}.mid", events, outside)


@dataclass
class RecoveredTake:
    saved: Saved
    journal: Path
    day: date
    seconds: float


def recover_takes(dataset: Path) -> list[RecoveredTake]:
    """Save every take whose recording died (its journal left in dataset/takes) exactly as
    it would have been saved, and remove its journal. A save that had begun is finished
    under the name it had picked."""
    recovered = []
    for left in journal.unfinished_takes(Path(dataset) / TAKES):
        take = Take(bpm=left.bpm, messages=left.messages, seconds=left.seconds,
                    ended_by="recovery")
        saved = save_take(take, Path(dataset), left.name, left.source, day=left.day,
                          log=journal.TakeJournal.reopen(left.path), stem=left.saving)
        if saved is not None:  # None: killed before a note was played
            recovered.append(RecoveredTake(saved, left.path, left.day, left.seconds))
    return recovered
