"""The player's side of `synth live`: the keys as they come, the phrase in progress as one line,
its tempo, and its reading into events that the melody hears while the player pauses."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import mido

from synth.music import events as ev
from synth.music.midi import CHORD_SECONDS
from synth.music.notes import in_range
from synth.play import tempo
from synth.play.inputs import is_press
from synth.play.responder import Responder
from synth.play.take import Take
from synth.sound.piano import DEFAULT_VELOCITY

PREPARE_STEP = 16  # phrase events fed between looks at the clock


@dataclass
class Heard:
    """A phrase read (its beat and events) and fed into the melody, before it is answered."""

    beat: tempo.Beat
    begin: float  # clock time of the beat the phrase's grid starts on
    events: list[ev.Event]
    outside: list  # notes outside C3-B4, left out
    merged: list  # notes too close to the next for the grid, merged (take.Reading)
    velocity: int
    before: tuple  # the responder's mark before the phrase was fed
    fed: int = 0


class Listener:
    """The phrase the player is playing, as `import` reads a file: keys struck within 40 ms
    are one chord (its top note), and a key pressed under a higher note still held (a left
    hand under the melody) is left out. Its tempo is --bpm (`bpm`), else its own, else the
    last phrase's; what the melody heard of it is taken back if it goes on."""

    def __init__(self, responder: Responder, bpm: float | None = None):
        self.responder = responder
        self.bpm = bpm  # a fixed tempo; None = the tempo of each phrase
        self.held: set[int] = set()
        self.phrase: list[tuple[float, mido.Message]] = []
        self.last_activity = -math.inf  # clock time of the last key down or up
        self.last_bpm: float | None = None  # the tempo of the last phrase answered
        self.heard: Heard | None = None
        self.under_count = 0  # keys left out of the phrase in progress
        self._top: tuple[float, int] | None = None  # start and pitch of the line's last note
        self._under: set[int] = set()  # keys held that were left out of the phrase

    @property
    def waiting(self) -> bool:
        """Whether a phrase has begun and no key is held: a pause that may end it."""
        return bool(self.phrase) and not self.held

    def press(self, t: float, msg: mido.Message) -> bool:
        """A key down at `t`; returns whether it joined the phrase (see `_in_line`)."""
        kept = self._in_line(t, msg.note)
        self.held.add(msg.note)
        if kept:
            self._add(t, msg)
        else:
            self._under.add(msg.note)
            self.under_count += 1
        self.last_activity = t
        return kept

    def release(self, t: float, msg: mido.Message) -> None:
        """A key up at `t`: it ends its note in the phrase, unless the note was left out."""
        self.held.discard(msg.note)
        if msg.note in self._under:
            self._under.discard(msg.note)
        elif self.phrase:
            self._add(t, msg)
        self.last_activity = t

    def _in_line(self, t: float, pitch: int) -> bool:
        """Whether a key pressed at `t` joins the phrase: not if it begins under the line's
        last note, higher and still held (a left hand under the melody), as `import` keeps
        the highest sounding note; keys struck within 40 ms are a chord, whose top note
        `Take.events` keeps. Notes outside C3-B4 join, to be left out and reported there."""
        if not in_range(pitch):
            return True
        top = self._top
        if top is not None and t - top[0] <= CHORD_SECONDS:
            self._top = (top[0], max(top[1], pitch))
            return True
        if top is not None and top[1] > pitch and top[1] in self.held \
                and top[1] not in self._under:
            return False
        self._top = (t, pitch)
        return True

    def _add(self, t: float, msg: mido.Message) -> None:
        """The phrase goes on: what was read and heard of it so far no longer holds."""
        if self.heard is not None:
            self.responder.back(self.heard.before)
            self.heard = None
        self.phrase.append((t, msg))

    def period(self) -> float | None:
        """Seconds per beat of the tempo known now, or None: --bpm, else the phrase's own
        (three notes or more), else the last phrase's."""
        if self.bpm is not None:
            return 60.0 / self.bpm
        onsets = [t for t, m in self.phrase if is_press(m)]
        if len(tempo.distinct_onsets(onsets, CHORD_SECONDS)) >= tempo.MIN_ONSETS:
            return tempo.estimate(onsets, previous=self.last_bpm, chord=CHORD_SECONDS).period
        return None if self.last_bpm is None else 60.0 / self.last_bpm

    def beat(self) -> tempo.Beat:
        """The beat of the phrase so far: its tempo (or the fixed --bpm) and phase."""
        onsets = [t for t, m in self.phrase if is_press(m)]
        if self.bpm is not None:
            return tempo.fixed(onsets, self.bpm, chord=CHORD_SECONDS)
        return tempo.estimate(onsets, previous=self.last_bpm, chord=CHORD_SECONDS)

    def hearing_left(self) -> bool:
        """Whether a paused phrase is still to be read or fed."""
        if not self.phrase or self.held:
            return False
        return self.heard is None or self.heard.fed < len(self.heard.events)

    def hear(self, budget: float) -> Heard:
        """Read the phrase (its beat and events) and feed it into the melody, stopping after
        `budget` seconds; the next call goes on from there."""
        if self.heard is None:
            beat = self.beat()
            begin = beat.before(self.phrase[0][0])  # the phrase's grid starts on a beat
            take = Take(bpm=beat.bpm, messages=[(t - begin, m) for t, m in self.phrase],
                        seconds=self.last_activity - begin)
            reading = take.reading()
            velocities = [m.velocity for _, m in self.phrase if is_press(m)]
            velocity = int(statistics.median(velocities)) if velocities else DEFAULT_VELOCITY
            self.heard = Heard(beat, begin, reading.events, reading.outside, reading.merged,
                               velocity, self.responder.mark())
        heard = self.heard
        until = time.perf_counter() + budget
        while heard.fed < len(heard.events) and time.perf_counter() < until:
            self.responder.hear(heard.events[heard.fed : heard.fed + PREPARE_STEP])
            heard.fed = min(heard.fed + PREPARE_STEP, len(heard.events))
        return heard

    def forget(self) -> None:
        """The melody went back past what it heard of the phrase (an answer cut short): the
        phrase is read and heard again."""
        self.heard = None

    def next_phrase(self) -> tuple[list[tuple[float, mido.Message]], int]:
        """The phrase, read and heard whole, is answered: the next begins, in its tempo if it
        had notes to answer. Returns the spent phrase's messages (let go by the caller when
        the time does not count) and how many keys were left out of it."""
        spent, under = self.phrase, self.under_count
        if self.heard is not None and self.heard.events:
            self.last_bpm = self.heard.beat.bpm
        self.phrase, self.heard, self._top = [], None, None
        self.under_count = 0
        return spent, under
