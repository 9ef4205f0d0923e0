"""Events: a class and a length (SPEC sections 1 and 2), the one type every module speaks.

A length is counted in quarter beats, 1..32 (1/4 to 8 beats); its model class is quarters - 1.
Song files, MIDI, the piano, the plot, the model and live play all read and write `Event`s,
and this module is the only one that knows how a length is written, quantised or encoded.
Pure Python plus NumPy for the encoder: every path may import it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from synth.errors import SynthError
from synth.music.notes import NUM_CLASSES, REST

QUARTERS_PER_BEAT = 4  # the grid: a quarter of a beat
BEAT = QUARTERS_PER_BEAT  # a plain event (no length written) lasts one beat
MAX_QUARTERS = 32  # 8 beats
NUM_LENGTHS = MAX_QUARTERS  # length classes 0..31 mean 1..32 quarter beats
INPUT_SIZE = NUM_CLASSES + NUM_LENGTHS  # the model's input: class one-hot, length one-hot
LENGTHS_EXPECTED = "expected a multiple of 1/4 beat from 1/4 to 8 (like 2, 0.5, 1.5 or 3/2)"


class Event(NamedTuple):
    """One event of a song: class 0 (rest) or 1-24 (C3-B4), lasting `quarters` quarter beats."""

    cls: int
    quarters: int = BEAT

    @property
    def beats(self) -> float:
        return self.quarters / QUARTERS_PER_BEAT

    @property
    def is_rest(self) -> bool:
        return self.cls == REST

    def __str__(self) -> str:
        return format_event(self)


def parse_length(text: str) -> int:
    """Quarter beats of a written length: '2', '0.5', '.75', '3/2'. Raises SynthError."""
    value = text.strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+|[0-9]+/[0-9]+", value):
        raise SynthError(f"length '{value}' is not a number of beats: {LENGTHS_EXPECTED}")
    from fractions import Fraction  # here, not at the top: compose never reads a length

    try:
        beats = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise SynthError(f"length '{value}' is not a number of beats: {LENGTHS_EXPECTED}") \
            from None
    quarters = beats * QUARTERS_PER_BEAT
    if quarters.denominator != 1:
        raise SynthError(f"length {value} is not a multiple of 1/4 beat: {LENGTHS_EXPECTED}")
    if not 1 <= quarters <= MAX_QUARTERS:
        raise SynthError(f"length {value} is out of range: {LENGTHS_EXPECTED}")
    return int(quarters)


def format_length(quarters: int) -> str:
    """A length as a file writes it: 4 -> '1', 2 -> '0.5', 6 -> '1.5', 1 -> '0.25'."""
    return f"{quarters / QUARTERS_PER_BEAT:g}"


def format_event(event: Event) -> str:
    """`C` for a one-beat event, else `C:L`."""
    if event.quarters == BEAT:
        return str(event.cls)
    return f"{event.cls}:{format_length(event.quarters)}"


def check_event(event: object) -> Event:
    """An Event with a class 0-24 and a length on the grid, or a SynthError saying what is not."""
    if not (isinstance(event, tuple) and len(event) == 2):
        raise SynthError(f"{event!r} is not an event: expected (class, quarter beats)")
    cls, quarters = event
    if not (isinstance(cls, (int, np.integer)) and 0 <= cls < NUM_CLASSES):
        raise SynthError(f"class {cls!r} is out of range: expected an integer 0-24")
    if not (isinstance(quarters, (int, np.integer)) and 1 <= quarters <= MAX_QUARTERS):
        raise SynthError(f"length {quarters!r} quarter beats is out of range: expected 1-32 "
                         "(1/4 to 8 beats)")
    return Event(int(cls), int(quarters))


def events_of(classes: Iterable[int], quarters: int = BEAT) -> list[Event]:
    """Events of a plain class sequence, every one `quarters` long (a beat by default)."""
    return [Event(int(c), quarters) for c in classes]


def even(events: Iterable[Event]) -> list[Event]:
    """Every length one beat: the sound of a song without rhythm."""
    return [Event(e.cls, BEAT) for e in events]


def total_beats(events: Iterable[Event]) -> float:
    return sum(e.quarters for e in events) / QUARTERS_PER_BEAT


def starts(events: Sequence[Event]) -> list[int]:
    """Start of every event, in quarter beats from the start of the song."""
    out, now = [], 0
    for event in events:
        out.append(now)
        now += event.quarters
    return out


def to_grid(beats: float) -> int:
    """The nearest quarter beat of a time or length in beats (halves round up)."""
    return int(math.floor(beats * QUARTERS_PER_BEAT + 0.5))


def rests(quarters: int) -> list[Event]:
    """Silence of any length as rest events of at most 8 beats each."""
    out = []
    while quarters > 0:
        part = min(quarters, MAX_QUARTERS)
        out.append(Event(REST, part))
        quarters -= part
    return out


# --- the encoder: events -> model inputs and targets, shared by training and scoring ---


def encode(events: Sequence[Event]) -> tuple[np.ndarray, np.ndarray]:
    """(class indices, length-class indices) of a song, as int32 arrays."""
    return (np.fromiter((e.cls for e in events), dtype=np.int32, count=len(events)),
            np.fromiter((e.quarters - 1 for e in events), dtype=np.int32, count=len(events)))


# --- events written as note names (primers, the screen) ------------------------------------


def parse_events(text: str) -> list[Event]:
    """A primer: note names or classes, each optionally with a length in beats
    ('C4:1.5 D4:0.5 E4:2', '13 15:2 - 17'), separated by spaces or commas."""
    from synth.music.notes import parse_token

    words = [w for w in re.split(r"[\s,]+", text) if w]
    if not words:
        raise SynthError("the primer is empty: expected note names like 'C4 E4:2 G4' or classes")
    events = []
    for word in words:
        name, colon, length = word.rpartition(":") if ":" in word else (word, "", "")
        events.append(Event(parse_token(name), parse_length(length) if colon else BEAT))
    return events


def event_name(event: Event) -> str:
    """'C4', 'C4:1.5', '-:2' for a two-beat rest."""
    from synth.music.notes import class_name

    name = class_name(event.cls)
    return name if event.quarters == BEAT else f"{name}:{format_length(event.quarters)}"


def events_to_names(events: Iterable[Event]) -> str:
    return " ".join(event_name(e) for e in events)
