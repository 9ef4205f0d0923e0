"""An answer of `synth live` as it plays: drawn event by event about half a second ahead of what
sounds, turned into notes at the phrase's tempo, and under --overlap finishing its bar."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from synth.music import events as ev
from synth.music.notes import class_to_midi
from synth.play.exchanges import Exchange
from synth.play.outputs import Strike
from synth.play.responder import Responder

BAR_BEATS = 4  # --overlap: the answer finishes the bar (of this many beats from its start)
DRAW_AHEAD = 0.5  # seconds of the answer drawn and scheduled ahead of the clock


def answer_notes(events: Sequence[ev.Event], bpm: float, velocity: int,
                 first: int = 0) -> list[Strike]:
    """Each pitch event strikes at its start and is held for its length; `first` is where the
    first of `events` starts, in quarter beats from the answer's start."""
    quarter = 60.0 / bpm / ev.QUARTERS_PER_BEAT
    return [Strike(start * quarter, (start + e.quarters) * quarter, class_to_midi(e.cls), velocity)
            for e, start in zip(events, (first + s for s in ev.starts(events)))
            if not e.is_rest]


@dataclass
class AnswerInProgress:
    """The answer in progress, drawn as it plays."""

    exchange: Exchange
    count: int  # events to draw at most
    room: int | None  # quarter beats it may fill (None: no limit)
    velocity: int
    begin: float  # clock time of its first event
    quarter: float  # seconds per quarter beat
    quarters: int = 0  # length of the events drawn so far
    done: bool = False  # every event drawn
    starts: list[int] = field(default_factory=list)  # of the events drawn, in quarter beats
    shown: int = 0  # events begun and shown on the screen
    until: float = math.inf  # --overlap: the end of the bar it finishes under the next call
    stopped: bool = False  # --overlap: drawing stopped at that bar line

    def drawn_until(self) -> float:
        """Clock time where the events drawn so far end."""
        return self.begin + self.quarters * self.quarter

    def end(self) -> float:
        """When it stops sounding; not known until every event is drawn (or its bar set)."""
        return min(self.drawn_until() if self.done else math.inf, self.until)

    def wake(self) -> float:
        """When the session's loop next has work for it: its end once all is drawn, else the
        time to draw on (DRAW_AHEAD before the drawn events run out)."""
        return min(self.end() if self.done else self.drawn_until() - DRAW_AHEAD, self.until)

    def draw(self, responder: Responder, now: float) -> list[Strike]:
        """Draw the answer on until DRAW_AHEAD seconds past `now` (or past its first beat) are
        covered, or it is complete; returns the notes of the events drawn."""
        horizon = max(now, self.begin) + DRAW_AHEAD
        first = self.quarters
        drawn: list[ev.Event] = []
        while not self.done and self.drawn_until() < horizon:
            if self.drawn_until() >= self.until:  # --overlap: the bar it finishes is full
                self.done = self.stopped = True
                break
            room = None if self.room is None else self.room - self.quarters
            event = responder.draw(room)
            if event is None:  # the next event would run past the answer's beats
                self.done = True
                break
            drawn.append(event)
            self.starts.append(self.quarters)
            self.quarters += event.quarters
            self.exchange.answer.append(event)
            self.done = len(self.exchange.answer) >= self.count
        return answer_notes(drawn, self.exchange.bpm, self.velocity, first)

    def begun_by(self, now: float) -> int:
        """How many of the events drawn have begun by clock time `now` (at least those shown)."""
        begun = self.shown
        while begun < len(self.starts) and self.begin + self.starts[begun] * self.quarter <= now:
            begun += 1
        return begun

    def finish_bar(self, t: float) -> None:
        """--overlap: a key at `t`, after the answer began, begins the next call; the answer
        finishes the bar it is in (bars of BAR_BEATS from its first beat)."""
        if self.until == math.inf:
            bar = BAR_BEATS * ev.QUARTERS_PER_BEAT * self.quarter
            self.until = self.begin + (math.floor((t - self.begin) / bar) + 1) * bar
            self.exchange.overlapped = True
