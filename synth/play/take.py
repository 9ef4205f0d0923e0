"""What was played, read as a song: a take's timed MIDI messages (a recorded take, or one
phrase in live play) turned into events on the quarter-beat grid at its tempo."""

from __future__ import annotations

from dataclasses import dataclass, field

import mido

from synth.music import events as ev
from synth.music.midi import (CHORD_SECONDS, Note, grid_events, on_the_grid, pair_notes,
                              played_line)
from synth.music.notes import midi_name

# A silence of at least half a beat after a key is let go is a rest; shorter is articulation.
MIN_REST_BEATS = 0.5


@dataclass
class Reading:
    """A take read as a song: its events, and what was played that they leave out."""

    events: list[ev.Event]
    outside: list[Note]  # notes outside C3-B4
    merged: list[Note]  # notes too close to the next for the quarter-beat grid to hold both


@dataclass
class Take:
    """What was played: messages at their times in seconds from its start (a recorded take, or
    one phrase in live play).

    Its events, on the quarter-beat grid at the take's bpm: keys struck within 40 ms are one
    chord (its top note); a note lasts until the next press when played legato, or as long as
    it was held when at least half a beat of silence follows, that silence becoming a rest;
    the last note lasts as long as it was held; notes outside C3-B4 are left out. Two notes
    nearer than the grid holds move apart where the note before them has time to give up, and
    are merged (the earlier left out, and named in `reading().merged`) where it has none.
    """

    bpm: float
    messages: list[tuple[float, mido.Message]] = field(default_factory=list)
    seconds: float = 0.0  # how long the take lasted
    ended_by: str = ""
    downbeat: float = 0.0  # seconds into the take of beat 1 (the count-in's beats before it)

    def notes(self, until: float | None = None) -> list[Note]:
        """Every note played, times in beats at the take's bpm; keys still held end at `until`
        seconds (the end of the take by default)."""
        per_second = self.bpm / 60.0
        end = self.seconds if until is None else until
        return pair_notes(((t * per_second, m) for t, m in self.messages), end * per_second)

    def line(self, until: float | None = None) -> tuple[list[Note], list[Note]]:
        """The take as one line of notes (chords to their top note), and the notes outside
        C3-B4 left out of it."""
        return played_line(self.notes(until), chord=CHORD_SECONDS * self.bpm / 60.0)

    def reading(self) -> Reading:
        """The song's events, with the notes left out of them and why."""
        line, outside = self.line()
        placed, merged = on_the_grid(line)
        return Reading(grid_events(placed, shift=False, min_rest=MIN_REST_BEATS), outside,
                       merged)

    def events(self) -> tuple[list[ev.Event], list[Note]]:
        """The song's events, and the notes left out because they lie outside C3-B4."""
        reading = self.reading()
        return reading.events, reading.outside

    def pickup(self) -> float:
        """How many beats before beat 1 (`downbeat`) the song starts: notes played during the
        count-in, on the quarter-beat grid measured from its beats; 0 for none."""
        placed = on_the_grid(self.line()[0])[0]
        if not placed:
            return 0.0
        before = ev.to_grid(self.downbeat * self.bpm / 60.0) - placed[0][1]
        return max(before, 0) / ev.QUARTERS_PER_BEAT

    def merged(self, until: float | None = None) -> list[Note]:
        """The notes merged so far for want of room on the grid (see `on_the_grid`): once
        merged, a note stays merged whatever is played after `until`."""
        return on_the_grid(self.line(until)[0])[1]

    def decided(self, now: float) -> list[ev.Event]:
        """The first events of the song that nothing played after `now` (seconds into the take,
        every message before it already in `messages`) can change: a prefix of `events()`.

        A note is decided, with the rest after it, once the next note's grid point has passed
        (a later key on that point would replace the next note) or a note after that was
        played; a note let go is decided half a beat after it was let go (the rest after it
        waits for the next press).
        """
        line = on_the_grid(self.line(until=now)[0])[0]
        if not line:
            return []
        beat_now = now * self.bpm / 60.0
        settled = max(len(line) - 2, 0)
        if len(line) >= 2 and ev.to_grid(beat_now) > line[-1][1]:
            settled = len(line) - 1
        events = grid_events(line[: settled + 1], shift=False, min_rest=MIN_REST_BEATS)
        events = events[: max(i for i, e in enumerate(events) if not e.is_rest)]
        note = line[settled][0]
        after = line[settled + 1][0].start if settled + 1 < len(line) else beat_now
        if after - note.end >= MIN_REST_BEATS and beat_now - note.end >= MIN_REST_BEATS:
            events += grid_events(line[settled : settled + 1], shift=False)[:1]  # let go: as held
        return events


def merged_names(merged: list[Note]) -> list[str]:
    """The names of notes merged, as the player is told them."""
    return [midi_name(n.pitch) for n in merged]


def merged_warning(names: list[str], bpm: float, advice: str) -> str:
    """What to tell the player about notes merged for want of room on the grid: how many,
    which (`names`), and `advice` on keeping them ("record at a slower --bpm")."""
    count = len(names)
    names = " ".join(names)
    what = "1 note faster than a quarter beat" if count == 1 else \
        f"{count} notes faster than a quarter beat"
    return f"{what} at {bpm:.0f} bpm {'was' if count == 1 else 'were'} merged: {names}; {advice}"
