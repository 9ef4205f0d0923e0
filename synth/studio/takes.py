"""The record page's logic: a take played in the browser becomes the same `Take` that
`synth record` builds from a keyboard, saved by the same function (dataset/NAME.txt and
dataset/takes/NAME.mid, atomically and durably, under a name claimed so that another save of
the same name at the same moment, from another tab or `synth record`, takes the next one)."""

from __future__ import annotations

import math
from pathlib import Path

import mido

from synth.errors import SynthError
from synth.play.take import Take, merged_names, merged_warning
from synth.play.record import check_count_in, check_seconds, save_take
from synth.music.songs import check_bpm

MAX_MESSAGES = 50_000


def take_of(data: object) -> tuple[Take, str]:
    """A Take and its name from {"name", "bpm", "count_in", "seconds", "messages": [[t, note,
    velocity]]}: times in seconds from beat 1 (the end of the count-in of `count_in` beats),
    back to the count-in's first beat (a pickup, kept as `synth record` keeps it: the take
    runs from the count-in's start, `downbeat` on beat 1); velocity 0 for a key let go."""
    if not isinstance(data, dict):
        raise SynthError("expected a JSON object with name, bpm, seconds and messages")
    name = data.get("name") or "take"
    if not isinstance(name, str) or len(name) > 120:
        raise SynthError("name: expected a short text")
    bpm = data.get("bpm", 120)
    if isinstance(bpm, bool) or not isinstance(bpm, (int, float)) or not math.isfinite(bpm):
        raise SynthError("bpm: expected a number")
    check_bpm(float(bpm))
    count_in = data.get("count_in", 0)
    if isinstance(count_in, bool) or not isinstance(count_in, int):
        raise SynthError("count_in: expected a whole number of beats")
    downbeat = check_count_in(count_in) * 60.0 / float(bpm)  # seconds before beat 1
    raw = data.get("messages")
    if not isinstance(raw, list) or len(raw) > MAX_MESSAGES:
        raise SynthError(f"messages: expected a list of at most {MAX_MESSAGES} [time, note, "
                         "velocity] triples")
    messages: list[tuple[float, mido.Message]] = []
    last = -downbeat
    for index, item in enumerate(raw):
        if not (isinstance(item, list) and len(item) == 3 and
                all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in item)):
            raise SynthError(f"messages[{index}]: expected [time, note, velocity]")
        t, note, velocity = item
        if not (math.isfinite(t) and -downbeat - 1e-6 <= t <= 3600 and t >= last - 1e-6):
            raise SynthError(f"messages[{index}]: time {t!r} is out of order or out of range "
                             f"(expected seconds from beat 1, back to -{downbeat:g}, the "
                             "count-in's start)")
        if not (float(note).is_integer() and 0 <= note <= 127 and
                float(velocity).is_integer() and 0 <= velocity <= 127):
            raise SynthError(f"messages[{index}]: note and velocity must be whole numbers 0-127")
        last = max(t, -downbeat)
        kind = "note_on" if velocity > 0 else "note_off"
        messages.append((last + downbeat,
                         mido.Message(kind, note=int(note), velocity=int(velocity))))
    seconds = data.get("seconds", last)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or \
            not math.isfinite(seconds):
        raise SynthError("seconds: expected a number")
    seconds = max(float(seconds), last, 0.001)
    check_seconds(seconds)
    take = Take(bpm=float(bpm), messages=messages, seconds=downbeat + seconds,
                ended_by="the page", downbeat=downbeat)
    return take, name


def save(root: Path, data: object) -> dict:
    """Save a take from the page into root/dataset; what was saved, for the page."""
    take, name = take_of(data)
    saved = save_take(take, Path(root) / "dataset", name, "the studio")
    if saved is None:
        raise SynthError("the take holds no notes: play something")
    rel = lambda p: Path(p).relative_to(root).as_posix() if p else None  # noqa: E731
    merged = merged_names(take.merged())
    warning = merged_warning(merged, take.bpm, "record at a slower tempo to keep them") \
        if merged else None
    return {"song": rel(saved.song_path), "take": rel(saved.take_path),
            "events": [[e.cls, e.quarters] for e in saved.events], "outside": len(saved.outside),
            "merged": merged, "warning": warning, "pickup": take.pickup()}
