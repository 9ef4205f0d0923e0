"""`synth live`: call and response. The player plays a phrase; when no key has been held for
long enough (the gap) the model answers with a continuation, conditioned on everything played
and answered so far (the LSTM state carries on through the session), and listens again.

The gap is musical: once the player's tempo is known (--bpm, or heard from three notes of the
phrase, or the last phrase's), it is --gap-beats (1.5) beats, and never under 1.3 times the
longest silence the player has left inside a phrase this session (a rest that ended a phrase
early, the player going on within a beat, is learned too). Before any tempo is known it is
0.8 s; --gap in seconds replaces the whole rule. The answer's first event comes on the next
beat of the player's grid, so 1.5 to 2.5 beats after the last key up. With --overlap, keys
played during an answer begin the next phrase and the answer finishes its bar; with
--interrupt (the default) they cut it short. --midi keeps the duet as a MIDI file (synth.play.session_midi).

The answer follows the player: the phrase's tempo and beat come from its onsets (synth.play.tempo)
unless --bpm fixes the tempo, the phrase is read as events on that beat's grid, and the answer
is played at that tempo from the player's next beat (the one after if the next is under
20 ms away, so that the answer is always ready in time). The phrase is one line, as `import`
reads a file: keys struck within 40 ms are one chord (its top note), and a key pressed under a
higher note still held (a left hand under the melody) is left out. The answer has as many
events as the phrase, but never lasts more than 16 beats, unless --respond asks for a number.

Never imports TensorFlow: the model runs in NumPy (synth.learn.generate). The cost of an answer is
flat in the length of the phrase and of the answer. The phrase is read (tempo, events) and fed
into the melody during the second half of the gap, when the player has stopped and the machine
waits, in slices of a few milliseconds between blocks of sound; if a key comes before the gap is
over, the phrase goes on and the melody goes back to where it was. The answer is drawn as it
plays, about half a second ahead of what sounds, and scheduled event by event. So at the phrase
end only the first half second of the answer is drawn and scheduled, and the output's next audio
block rendered (or any message due sent); `latency_ms` in the log measures exactly that span.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mido
import numpy as np

from synth import files
from synth.play import journal, tempo
from synth.play.session_midi import SessionMidi
from synth.errors import SynthError
from synth.music import events as ev
from synth.play.outputs import BLOCK, Strike
from synth.learn.generate import Runner, Sampling, memory_for, next_event, restore, state
from synth.play.inputs import KeyEvent, Input, is_press, is_release
from synth.play.take import Take
from synth.music.midi import CHORD_SECONDS
from synth.learn.model import Model
from synth.music.notes import class_to_midi, in_range
from synth.sound.piano import DEFAULT_VELOCITY, RATE
from synth.music.songs import check_bpm

ON_BEAT_MARGIN = 0.02  # an answer never starts on a beat closer than this to the phrase end
FIRST_GAP = 0.8  # seconds of silence that end a phrase while no tempo is known yet
GAP_BEATS = 1.5  # beats of silence that end a phrase once the tempo is known
GAP_BEATS_RANGE = (0.5, 8.0)
CLEARLY = 1.3  # a phrase end is a silence this many times the longest rest left inside phrases
MAX_REST_BEATS = 4.0  # rests learned inside phrases count up to this long (a gap of 5.2 beats)
BAR_BEATS = 4  # --overlap: the answer finishes the bar (of this many beats from its start)
DRAW_AHEAD = 0.5  # seconds of the answer drawn and scheduled ahead of the clock
ANSWER_BEATS = 16  # the default answer (as many events as the phrase) never lasts longer
MAX_RESPOND = 500  # --respond: events per answer
PREPARE_AFTER = 0.5  # the phrase is read and heard once this fraction of the gap has passed
PREPARE_SLICE = 0.002  # seconds of that work per pass of the loop, so sound and keys go on
PREPARE_STEP = 16  # phrase events fed between looks at the clock


@dataclass(frozen=True)
class LiveSettings:
    """How the model listens and answers."""

    gap: float | None = None  # seconds with no key held that end a phrase (wins over
    # gap_beats); None = gap_beats once the tempo is known, FIRST_GAP seconds before
    gap_beats: float = GAP_BEATS
    respond: int | None = None  # events per answer; None = as many as the phrase had, in
    # at most ANSWER_BEATS beats
    interrupt: bool = True  # a key pressed during an answer cuts it short
    overlap: bool = False  # a key pressed during an answer begins the next call, and the
    # answer finishes its bar (wins over interrupt)
    bpm: float | None = None  # a fixed tempo; None = the tempo of each phrase
    sampling: Sampling = field(default_factory=Sampling)

    def check(self) -> "LiveSettings":
        if self.gap is not None and not (0.05 <= self.gap <= 10 and math.isfinite(self.gap)):
            raise SynthError(f"--gap {self.gap:g} is out of range: expected 0.05-10 seconds")
        low, high = GAP_BEATS_RANGE
        if not (low <= self.gap_beats <= high and math.isfinite(self.gap_beats)):
            raise SynthError(f"--gap-beats {self.gap_beats:g} is out of range: expected "
                             f"{low:g}-{high:g} beats")
        if self.respond is not None and not 1 <= self.respond <= MAX_RESPOND:
            raise SynthError(f"--respond {self.respond} is out of range: "
                             f"expected 1-{MAX_RESPOND} events")
        if self.bpm is not None:
            check_bpm(self.bpm)
        self.sampling.check()
        return self


class Responder:
    """The model's side of the conversation: one running melody for the whole session.

    An answer is drawn one event at a time as it plays (`begin`, then `draw`); `heard` takes
    the melody and the random numbers back to where the events that sounded left them, so that
    events drawn ahead and never heard leave no trace.
    """

    def __init__(self, model: Model, sampling: Sampling = Sampling()):
        # The memory's short-term model hears the whole session: the player's motifs return.
        self.melody = Runner(model, memory_for(model, sampling.memory))
        self.sampling = sampling
        self.rng = np.random.default_rng(sampling.seed)
        self._trail: list[tuple] = []  # marks before the answer and after each event drawn

    def mark(self) -> tuple:
        """Where the melody and the random numbers are, for `back`."""
        return state(self.melody), self.rng.bit_generator.state

    def back(self, mark: tuple) -> None:
        restore(self.melody, mark[0])
        self.rng.bit_generator.state = mark[1]

    def hear(self, events: Sequence[ev.Event]) -> None:
        """Feed played events; the next draw continues after them."""
        self.melody.feed(events)

    def begin(self) -> None:
        """An answer starts here."""
        self._trail = [self.mark()]

    def draw(self, room: int | None = None) -> ev.Event | None:
        """The answer's next event, fed back into the melody; None, and nothing drawn or fed,
        if it is longer than `room` quarter beats."""
        before = self.rng.bit_generator.state if room is not None else None
        event = next_event(self.melody, self.sampling, self.rng)
        if room is not None and event.quarters > room:
            self.rng.bit_generator.state = before
            return None
        self.melody.feed([event])
        self._trail.append(self.mark())
        return event

    def answer(self, phrase: Sequence[ev.Event], count: int) -> list[ev.Event]:
        """Hear `phrase`, then draw `count` events that continue it."""
        self.hear(phrase)
        self.begin()
        return [self.draw() for _ in range(count)]

    def end(self) -> None:
        """The answer is over: let its trail go (now rather than at the next answer's start,
        where the time counts)."""
        self._trail = []

    def heard(self, played: int) -> None:
        """Only the first `played` events of the answer sounded: forget the rest."""
        if self._trail:
            self.back(self._trail[min(played, len(self._trail) - 1)])


def answer_notes(events: Sequence[ev.Event], bpm: float, velocity: int,
                 first: int = 0) -> list[Strike]:
    """Each pitch event strikes at its start and is held for its length; `first` is where the
    first of `events` starts, in quarter beats from the answer's start."""
    quarter = 60.0 / bpm / ev.QUARTERS_PER_BEAT
    return [Strike(start * quarter, (start + e.quarters) * quarter, class_to_midi(e.cls), velocity)
            for e, start in zip(events, (first + s for s in ev.starts(events)))
            if not e.is_rest]


# --- the session --------------------------------------------------------------------------


@dataclass
class Exchange:
    """One phrase and the answer to it; a line of the --log file.

    `answer` holds the events drawn, and grows as the answer plays. An answer cut short
    (`interrupted`) sounded only its first `played` events; the events after them were drawn
    ahead (about half a second's worth) and never sounded, and the melody forgot them.
    """

    time: float  # seconds from the start of the session to the phrase end
    phrase: list[ev.Event]
    answer: list[ev.Event]
    latency_ms: float
    bpm: float  # the tempo of the phrase's grid and of the answer
    start: float  # seconds from the start of the session to the answer's first event
    bpm_from: str = tempo.PHRASE  # phrase, previous (phrase), default or fixed (--bpm)
    played: int = 0  # answer events that sounded before a cut (all of them if not cut)
    interrupted: bool = False
    left_out: int = 0  # phrase notes outside C3-B4
    under: int = 0  # phrase notes left out as they began under a higher note still held
    gap: float = 0.0  # seconds of silence that ended the phrase (the rule in force then)
    release: float = 0.0  # seconds from the start of the session to the phrase's last key up
    early: bool = False  # the player went on within a beat of the phrase end
    overlapped: bool = False  # --overlap: keys came during the answer, which finished its bar

    @property
    def seconds(self) -> float:
        """How long the answer drawn so far lasts (to the end of its last event)."""
        return ev.total_beats(self.answer) * 60.0 / self.bpm

    def begun(self, t: float) -> int:
        """How many of the answer's events have begun `t` seconds into the session."""
        elapsed = (t - self.start) * self.bpm / 60.0 * ev.QUARTERS_PER_BEAT
        return sum(start <= elapsed + 1e-9 for start in ev.starts(self.answer))

    def record(self) -> dict:
        data = asdict(self)
        data["phrase"] = [e.cls for e in self.phrase]
        data["answer"] = [e.cls for e in self.answer]
        data["phrase_lengths"] = [e.beats for e in self.phrase]
        data["answer_lengths"] = [e.beats for e in self.answer]
        data["latency_ms"] = round(self.latency_ms, 3)
        data["time"] = round(self.time, 3)
        data["start"] = round(self.start, 4)
        data["bpm"] = round(self.bpm, 2)
        data["gap"] = round(self.gap, 3)
        data["gap_beats"] = round(self.gap * self.bpm / 60.0, 2)
        data["release"] = round(self.release, 3)
        delay = self.delay()
        data["delay"] = None if delay is None else round(delay, 3)
        data["delay_beats"] = None if delay is None else round(delay * self.bpm / 60.0, 2)
        return data

    def delay(self) -> float | None:
        """Seconds from the phrase's last key up to the answer's first note (None if no note
        of the answer sounded)."""
        for event, start in zip(self.answer[: self.played], ev.starts(self.answer)):
            if not event.is_rest:
                return self.start + start * 60.0 / self.bpm / ev.QUARTERS_PER_BEAT - self.release
        return None


@dataclass
class _Heard:
    """A phrase read (its beat and events) and fed into the melody, before it is answered."""

    beat: tempo.Beat
    begin: float  # clock time of the beat the phrase's grid starts on
    events: list[ev.Event]
    outside: list  # notes outside C3-B4, left out
    velocity: int
    before: tuple  # the responder's mark before the phrase was fed
    fed: int = 0


@dataclass
class _Answer:
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
        return self.begin + self.quarters * self.quarter

    def end(self) -> float:
        """When it stops sounding; not known until every event is drawn (or its bar set)."""
        return min(self.drawn_until() if self.done else math.inf, self.until)


class AnswerLog:
    """--log FILE.jsonl: one JSON object per answer, written under its final name as it
    comes, so a session that dies leaves every answer it gave (synth.play.journal)."""

    def __init__(self, path: Path):
        self.log = journal.SessionLog(path)

    def write(self, exchange: Exchange) -> None:
        self.log.write(json.dumps(exchange.record()))

    def close(self) -> list[Path]:
        return [self.log.close()]

    def abandon(self) -> None:
        """The session never began: the empty log goes."""
        self.log.path.unlink(missing_ok=True)
        self.log.close()


class Screen:
    """What the session tells the player; the CLI draws it, tests and benchmarks ignore it."""

    def played(self, pitch: int, kept: bool = True) -> None:
        """A key was pressed; not `kept` if it began under a higher note held (left out)."""

    def answered(self, exchange: Exchange) -> None:
        """An answer was scheduled; its first beat may still be ahead."""

    def sounded(self, exchange: Exchange, count: int) -> None:
        """The first `count` events of the answer have begun to sound."""

    def finished(self, exchange: Exchange) -> None: ...


class Session:
    """Listens to an input and answers phrases until the input ends or Ctrl-C."""

    def __init__(self, model: Model, output, settings: LiveSettings = LiveSettings(),
                 log: AnswerLog | None = None, screen: Screen | None = None,
                 clock=time.monotonic, duet: SessionMidi | None = None):
        self.settings = settings.check()
        self.responder = Responder(model, settings.sampling)
        self.output = output
        self.log = log
        self.screen = screen or Screen()
        self.clock = clock
        self.origin = clock()
        self.held: set[int] = set()
        self.phrase: list[tuple[float, mido.Message]] = []
        self.last_activity = -math.inf
        self.current: Exchange | None = None
        self.exchanges: list[Exchange] = []
        self.last_bpm: float | None = None  # the tempo of the last phrase answered
        self.ending = ""
        self.ended_by = ""
        self._answer: _Answer | None = None
        self._heard: _Heard | None = None
        self._top: tuple[float, int] | None = None  # start and pitch of the line's last note
        self._under: set[int] = set()  # keys held that were left out of the phrase
        self._under_count = 0
        self.duet = duet  # --midi: the session as a two-track MIDI file
        self.rest_beats = 0.0  # the longest silence left inside a phrase so far, in beats
        self._silences: list[float] = []  # seconds, inside the phrase in progress
        self._gap: tuple[int, float] = (-1, 0.0)  # (phrase length, its gap), cached

    def _answer_end(self) -> float:
        """When the answer in progress (or waiting for its first beat) stops sounding."""
        return -math.inf if self._answer is None else self._answer.end()

    def answering(self, now: float) -> bool:
        return self.current is not None and now < self._answer_end()

    def run(self, source: Input) -> list[Exchange]:
        """Play the whole session; returns every exchange. Ctrl-C ends it cleanly."""
        source.start()
        try:
            while True:
                now = self.clock()
                wake = min(self._next_wake(now), now + BLOCK / RATE)
                event = source.get(timeout=wake - now)
                if event is not None:
                    self.handle(event)
                self.tick(self.clock())
                if self.ending and not self.phrase and self.current is None:
                    self.ended_by = self.ending
                    break
        except KeyboardInterrupt:
            self.ended_by = "Ctrl-C"
        finally:
            source.close()
        return self.exchanges

    def _next_wake(self, now: float) -> float:
        wake = self.output.next_due()
        if self._answer is not None:
            wake = min(wake, self._answer.end() if self._answer.done
                       else self._answer.drawn_until() - DRAW_AHEAD)
            wake = min(wake, self._answer.until)
        if self.phrase and not self.held:
            gap = self.gap()
            wake = min(wake, self.last_activity + gap)
            if self._hearing_left():
                wake = min(wake, self.last_activity + gap * PREPARE_AFTER)
        return wake

    def gap(self) -> float:
        """Seconds of silence that end the phrase in progress: --gap if given; else --gap-beats
        at the tempo known (fixed, or heard in this phrase or the last), and never less than
        CLEARLY times the longest silence left inside this session's phrases; before any tempo
        is known, FIRST_GAP seconds (or that silence rule, if longer)."""
        if self.settings.gap is not None:
            return self.settings.gap
        if self._gap[0] != len(self.phrase):
            period = self._period()
            inside = max(self._silences, default=0.0)
            if period is None:
                gap = max(FIRST_GAP, CLEARLY * inside)
            else:
                rests = min(max(self.rest_beats * period, inside), MAX_REST_BEATS * period)
                gap = max(self.settings.gap_beats * period, CLEARLY * rests)
            self._gap = (len(self.phrase), gap)
        return self._gap[1]

    def _period(self) -> float | None:
        """Seconds per beat of the tempo known now, or None: --bpm, else the phrase's own
        (three notes or more), else the last phrase's."""
        if self.settings.bpm is not None:
            return 60.0 / self.settings.bpm
        onsets = [t for t, m in self.phrase if is_press(m)]
        if len(tempo.distinct_onsets(onsets, CHORD_SECONDS)) >= tempo.MIN_ONSETS:
            return tempo.estimate(onsets, previous=self.last_bpm, chord=CHORD_SECONDS).period
        return None if self.last_bpm is None else 60.0 / self.last_bpm

    def handle(self, event: KeyEvent) -> None:
        """Take in one event from the input."""
        msg = event.message
        if event.is_stop:  # keys still held are let go, so the last phrase can end
            self.ending = event.reason or "the input ended"
            for pitch in sorted(self.held):
                self.handle(KeyEvent(event.time, mido.Message("note_off", note=pitch)))
            return
        if self.duet is not None and (is_press(msg) or is_release(msg)):
            self.duet.key(event.time, msg)
        if is_press(msg):
            self._went_on(event.time)
            if self.answering(event.time):
                if self.settings.overlap:
                    self._run_on(event.time)
                elif self.settings.interrupt:
                    self._cut(event.time)
            if self.phrase and not self.held:
                self._silences.append(event.time - self.last_activity)
            kept = self._in_line(event.time, msg.note)
            self.held.add(msg.note)
            if kept:
                self._add(event.time, msg)
            else:
                self._under.add(msg.note)
                self._under_count += 1
            self.output.player_down(msg.note, msg.velocity, event.time)
            self.screen.played(msg.note, kept)
        elif is_release(msg):
            self.held.discard(msg.note)
            if msg.note in self._under:
                self._under.discard(msg.note)
            elif self.phrase:
                self._add(event.time, msg)
            self.output.player_up(msg.note, event.time)
        else:
            return
        self.last_activity = event.time

    def _went_on(self, t: float) -> None:
        """A key at `t`: if it comes within a beat of the last phrase end, that end was early,
        and the silence before it is learned as a rest inside a phrase."""
        last = self.current or (self.exchanges[-1] if self.exchanges else None)
        if last is None or self.phrase or last.early:
            return
        beats = (t - self.origin - last.time) * last.bpm / 60.0
        if 0 <= beats <= 1:
            last.early = True
            silence = (t - self.origin - last.release) * last.bpm / 60.0
            self.rest_beats = min(max(self.rest_beats, silence), MAX_REST_BEATS)
            self._gap = (-1, 0.0)

    def _run_on(self, t: float) -> None:
        """--overlap: a key during the answer begins the next call; the answer finishes the
        bar it is in (bars of BAR_BEATS from its first beat), or stops now if not begun."""
        answer = self._answer
        if t < answer.begin:
            self._cut(t)
        elif answer.until == math.inf:
            bar = BAR_BEATS * ev.QUARTERS_PER_BEAT * answer.quarter
            answer.until = answer.begin + (math.floor((t - answer.begin) / bar) + 1) * bar
            self.current.overlapped = True

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
        if self._heard is not None:
            self.responder.back(self._heard.before)
            self._heard = None
        self.phrase.append((t, msg))

    def tick(self, now: float) -> None:
        """Draw the answer on, finish it once it has played out, read and hear a phrase once
        the player has paused, answer it when the gap is over, make sound."""
        if self._answer is not None:
            notes = self._draw(now)
            if notes:
                self.output.extend(notes)
            self._show(now)
            if now >= self._answer.end():
                answer = self._answer
                if answer.end() == answer.until and (answer.stopped or not answer.done):
                    self._cut(answer.until)  # --overlap: its bar is over
                else:
                    self._finish(len(self.current.answer))
        pause = now - self.last_activity
        waiting = self.phrase and not self.held
        gap = self.gap() if waiting else math.inf
        if waiting and pause >= gap and self.current is None:
            self.respond(now)  # what is left to hear of the phrase counts in the latency
        elif self._hearing_left() and pause >= gap * PREPARE_AFTER:
            self._hear(PREPARE_SLICE)
        self.output.pump(now)

    def beat(self) -> tempo.Beat:
        """The beat of the phrase so far: its tempo (or the fixed --bpm) and phase."""
        onsets = [t for t, m in self.phrase if is_press(m)]
        if self.settings.bpm is not None:
            return tempo.fixed(onsets, self.settings.bpm, chord=CHORD_SECONDS)
        return tempo.estimate(onsets, previous=self.last_bpm, chord=CHORD_SECONDS)

    def _hearing_left(self) -> bool:
        """Whether a paused phrase is still to be read or fed (the melody must be free: no
        answer still being drawn)."""
        if not self.phrase or self.held or (self._answer is not None and not self._answer.done):
            return False
        return self._heard is None or self._heard.fed < len(self._heard.events)

    def _hear(self, budget: float) -> _Heard:
        """Read the phrase (its beat and events) and feed it into the melody, stopping after
        `budget` seconds; the next call goes on from there."""
        if self._heard is None:
            beat = self.beat()
            begin = beat.before(self.phrase[0][0])  # the phrase's grid starts on a beat
            take = Take(bpm=beat.bpm, messages=[(t - begin, m) for t, m in self.phrase],
                        seconds=self.last_activity - begin)
            events, outside = take.events()
            velocities = [m.velocity for _, m in self.phrase if is_press(m)]
            velocity = int(statistics.median(velocities)) if velocities else DEFAULT_VELOCITY
            self._heard = _Heard(beat, begin, events, outside, velocity,
                                 self.responder.mark())
        heard = self._heard
        until = time.perf_counter() + budget
        while heard.fed < len(heard.events) and time.perf_counter() < until:
            self.responder.hear(heard.events[heard.fed : heard.fed + PREPARE_STEP])
            heard.fed = min(heard.fed + PREPARE_STEP, len(heard.events))
        return heard

    def respond(self, now: float) -> Exchange | None:
        """The phrase has ended: answer it on the player's beat. Latency runs from here to the
        answer's first half second drawn and scheduled and the output's next block ready."""
        gap = self.gap()
        detected = time.perf_counter()
        heard = self._hear(math.inf)  # most often read and heard during the gap already
        spent = self.phrase  # let go after the latency is taken (0.3 ms at 500 notes)
        self.phrase, self._heard, self._top = [], None, None
        under, self._under_count = self._under_count, 0
        silences, self._silences = self._silences, []
        self._gap = (-1, 0.0)  # the next phrase's gap is its own
        if not heard.events:
            return None  # every note was outside C3-B4: nothing to answer
        beat = heard.beat
        self.last_bpm = beat.bpm
        start = beat.next_beat(now, ON_BEAT_MARGIN)
        self.current = Exchange(time=now - self.origin, phrase=heard.events, answer=[],
                                latency_ms=0.0, bpm=beat.bpm, start=start - self.origin,
                                bpm_from=beat.source, left_out=len(heard.outside),
                                under=under, gap=gap, release=self.last_activity - self.origin)
        respond = self.settings.respond
        self._answer = _Answer(
            self.current, count=respond or len(heard.events),
            room=None if respond else ANSWER_BEATS * ev.QUARTERS_PER_BEAT,
            velocity=heard.velocity, begin=start, quarter=60.0 / beat.bpm / ev.QUARTERS_PER_BEAT)
        self.responder.begin()
        self.output.play(self._draw(now), start, now)
        self.current.latency_ms = (time.perf_counter() - detected) * 1000.0
        del spent
        longest = max(silences, default=0.0) / beat.period
        self.rest_beats = min(max(self.rest_beats, longest), MAX_REST_BEATS)
        if self.duet is not None:
            self.duet.phrase(heard.begin, beat.bpm)
        self.screen.answered(self.current)
        return self.current

    def _draw(self, now: float) -> list[Strike]:
        """Draw the answer on until DRAW_AHEAD seconds past `now` (or past its first beat) are
        covered, or it is complete; returns the notes of the events drawn."""
        answer = self._answer
        horizon = max(now, answer.begin) + DRAW_AHEAD
        first = answer.quarters
        drawn: list[ev.Event] = []
        while not answer.done and answer.drawn_until() < horizon:
            if answer.drawn_until() >= answer.until:  # --overlap: the bar it finishes is full
                answer.done = answer.stopped = True
                break
            room = None if answer.room is None else answer.room - answer.quarters
            event = self.responder.draw(room)
            if event is None:  # the next event would run past the answer's beats
                answer.done = True
                break
            drawn.append(event)
            answer.starts.append(answer.quarters)
            answer.quarters += event.quarters
            answer.exchange.answer.append(event)
            answer.done = len(answer.exchange.answer) >= answer.count
        return answer_notes(drawn, answer.exchange.bpm, answer.velocity, first)

    def _show(self, now: float) -> None:
        """Tell the screen about the answer's events that have begun by `now`."""
        answer = self._answer
        begun = answer.shown
        while begun < len(answer.starts) and \
                answer.begin + answer.starts[begun] * answer.quarter <= now:
            begun += 1
        if begun > answer.shown:
            answer.shown = begun
            self.screen.sounded(answer.exchange, begun)

    def _cut(self, t: float) -> None:
        played = min(self.current.begun(t - self.origin), len(self.current.answer))
        self.output.cut(t)
        self.responder.heard(played)
        self._heard = None  # anything heard since is forgotten with the rest
        self._finish(played, interrupted=True, cut=t)

    def _finish(self, played: int, interrupted: bool = False, cut: float = math.inf) -> None:
        exchange, self.current = self.current, None
        answer, self._answer = self._answer, None
        exchange.played = played
        exchange.interrupted = interrupted
        self.responder.end()
        if self.duet is not None:
            self.duet.answer(answer.begin, answer_notes(exchange.answer[:played], exchange.bpm,
                                                        answer.velocity), cut)
            self.duet.save()
        if played > answer.shown:
            self.screen.sounded(exchange, played)
        self.exchanges.append(exchange)
        if self.log is not None:
            self.log.write(exchange)
        self.screen.finished(exchange)

    def close(self) -> list[Path]:
        """Stop: the answer in progress ends where it is, the outputs are saved."""
        with files.no_interrupts():
            now = self.clock()
            if self.current is not None:
                if self.answering(now):
                    self._cut(now)
                else:
                    self._finish(len(self.current.answer))
            written = self.output.close()
            if self.log is not None:
                written += self.log.close()
            if self.duet is not None:
                written.append(self.duet.save(until=now))
        return written
