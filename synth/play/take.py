"""What was played, read as a song: a take's timed MIDI messages (a recorded take, or one
phrase in live play) turned into events on the quarter-beat grid at its tempo."""

from __future__ import annotations

from dataclasses import dataclass, field

import mido

from synth.music import events as ev
from synth.music.midi import (CHORD_SECONDS, Note, line_events, one_per_grid_point, pair_notes,
                              played_line)

# A silence of at least half a beat after a key is let go is a rest; shorter is articulation.
MIN_REST_BEATS = 0.5


@dataclass
class Take:
    """What was played: messages at their times in seconds from its start (a recorded take, or
    one phrase in live play).

    Its events, on the quarter-beat grid at the take's bpm: keys struck within 40 ms are one
    chord (its top note); a note lasts until the next press when played legato, or as long as
    it was held when at least half a beat of silence follows, that silence becoming a rest;
    the last note lasts as long as it was held; notes outside C3-B4 are left out.
    """

    bpm: float
    messages: list[tuple[float, mido.Message]] = field(default_factory=list)
    seconds: float = 0.0  # how long the take lasted
    ended_by: str = ""

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

    def events(self) -> tuple[list[ev.Event], list[Note]]:
        """The song's events, and the notes left out because they lie outside C3-B4."""
        line, outside = self.line()
        return line_events(line, shift=False, min_rest=MIN_REST_BEATS), outside

    def decided(self, now: float) -> list[ev.Event]:
        """The first events of the song that nothing played after `now` (seconds into the take,
        every message before it already in `messages`) can change: a prefix of `events()`.

        A note is decided, with the rest after it, once the next note's grid point has passed
        (a later key on that point would replace the next note) or a note after that was
        played; a note let go is decided half a beat after it was let go (the rest after it
        waits for the next press).
        """
        line = one_per_grid_point(self.line(until=now)[0])
        if not line:
            return []
        beat_now = now * self.bpm / 60.0
        settled = max(len(line) - 2, 0)
        if len(line) >= 2 and ev.to_grid(beat_now) > line[-1][1]:
            settled = len(line) - 1
        notes = [note for note, _ in line]
        events = line_events(notes[: settled + 1], shift=False, min_rest=MIN_REST_BEATS)
        events = events[: max(i for i, e in enumerate(events) if not e.is_rest)]
        note = notes[settled]
        after = notes[settled + 1].start if settled + 1 < len(notes) else beat_now
        if after - note.end >= MIN_REST_BEATS and beat_now - note.end >= MIN_REST_BEATS:
            events += line_events([note], shift=False)[:1]  # let go: it lasts as it was held
        return events
