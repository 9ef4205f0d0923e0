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

This module is the session's loop (`Session`) and its settings; the parts it turns are each a
module of synth.play: `listener` (the player's phrase and its reading), `phrase_end` (the gap),
`responder` (the model's melody), `answers` (an answer as it plays) and `exchanges` (what was
said, and the --log file).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import mido

from synth import files
from synth.errors import SynthError
from synth.learn.generate import Sampling
from synth.learn.model import Model
from synth.music import events as ev
from synth.music.songs import check_bpm
from synth.play.answers import AnswerInProgress, answer_notes
from synth.play.exchanges import AnswerLog, Exchange
from synth.play.inputs import Input, KeyEvent, is_press, is_release
from synth.play.listener import Listener
from synth.play.outputs import BLOCK
from synth.play.phrase_end import GAP_BEATS, GAP_BEATS_RANGE, PhraseEnd
from synth.play.responder import Responder
from synth.play.session_midi import SessionMidi
from synth.play.take import merged_names
from synth.sound.piano import RATE

ON_BEAT_MARGIN = 0.02  # an answer never starts on a beat closer than this to the phrase end
ANSWER_BEATS = 16  # the default answer (as many events as the phrase) never lasts longer
MAX_RESPOND = 500  # --respond: events per answer
PREPARE_AFTER = 0.5  # the phrase is read and heard once this fraction of the gap has passed
PREPARE_SLICE = 0.002  # seconds of that work per pass of the loop, so sound and keys go on


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
        """The settings, if every one is in range; else a SynthError naming the flag."""
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
        self.listener = Listener(self.responder, settings.bpm)
        self.phrase_end = PhraseEnd(settings.gap, settings.gap_beats)
        self.output = output
        self.log = log
        self.screen = screen or Screen()
        self.clock = clock
        self.origin = clock()
        self.current: Exchange | None = None
        self.exchanges: list[Exchange] = []
        self.ending = ""
        self.ended_by = ""
        self._answer: AnswerInProgress | None = None
        self.duet = duet  # --midi: the session as a two-track MIDI file

    def _answer_end(self) -> float:
        """When the answer in progress (or waiting for its first beat) stops sounding."""
        return -math.inf if self._answer is None else self._answer.end()

    def answering(self, now: float) -> bool:
        """Whether an answer is sounding at `now`, or waiting for its first beat."""
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
                if self.ending and not self.listener.phrase and self.current is None:
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
            wake = min(wake, self._answer.wake())
        if self.listener.waiting:
            gap = self.gap()
            wake = min(wake, self.listener.last_activity + gap)
            if self._hearing_left():
                wake = min(wake, self.listener.last_activity + gap * PREPARE_AFTER)
        return wake

    def gap(self) -> float:
        """Seconds of silence that end the phrase in progress (synth.play.phrase_end)."""
        return self.phrase_end.gap(self.listener)

    def handle(self, event: KeyEvent) -> None:
        """Take in one event from the input."""
        msg = event.message
        if event.is_stop:  # keys still held are let go, so the last phrase can end
            self.ending = event.reason or "the input ended"
            for pitch in sorted(self.listener.held):
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
            if self.listener.waiting:
                self.phrase_end.silences.append(event.time - self.listener.last_activity)
            kept = self.listener.press(event.time, msg)
            self.output.player_down(msg.note, msg.velocity, event.time)
            self.screen.played(msg.note, kept)
        elif is_release(msg):
            self.listener.release(event.time, msg)
            self.output.player_up(msg.note, event.time)

    def _went_on(self, t: float) -> None:
        """A key at `t` that begins a phrase may show the last phrase end was early."""
        last = self.current or (self.exchanges[-1] if self.exchanges else None)
        if last is not None and not self.listener.phrase:
            self.phrase_end.went_on(t - self.origin, last)

    def _run_on(self, t: float) -> None:
        """--overlap: a key during the answer begins the next call; the answer finishes the
        bar it is in, or stops now if not begun."""
        if t < self._answer.begin:
            self._cut(t)
        else:
            self._answer.finish_bar(t)

    def tick(self, now: float) -> None:
        """Draw the answer on, finish it once it has played out, read and hear a phrase once
        the player has paused, answer it when the gap is over, make sound."""
        if self._answer is not None:
            notes = self._answer.draw(self.responder, now)
            if notes:
                self.output.extend(notes)
            self._show(now)
            if now >= self._answer.end():
                answer = self._answer
                if answer.end() == answer.until and (answer.stopped or not answer.done):
                    self._cut(answer.until)  # --overlap: its bar is over
                else:
                    self._finish(len(self.current.answer))
        pause = now - self.listener.last_activity
        waiting = self.listener.waiting
        gap = self.gap() if waiting else math.inf
        if waiting and pause >= gap and self.current is None:
            self.respond(now)  # what is left to hear of the phrase counts in the latency
        elif self._hearing_left() and pause >= gap * PREPARE_AFTER:
            self.listener.hear(PREPARE_SLICE)
        self.output.pump(now)

    def _hearing_left(self) -> bool:
        """Whether a paused phrase is still to be read or fed, with the melody free (no
        answer still being drawn)."""
        if self._answer is not None and not self._answer.done:
            return False
        return self.listener.hearing_left()

    def respond(self, now: float) -> Exchange | None:
        """The phrase has ended: answer it on the player's beat. Latency runs from here to the
        answer's first half second drawn and scheduled and the output's next block ready."""
        gap = self.gap()
        detected = time.perf_counter()
        heard = self.listener.hear(math.inf)  # most often read and heard during the gap already
        # The spent phrase is let go after the latency is taken (0.3 ms at 500 notes).
        spent, under = self.listener.next_phrase()
        silences = self.phrase_end.next_phrase()
        if not heard.events:
            return None  # every note was outside C3-B4: nothing to answer
        beat = heard.beat
        start = beat.next_beat(now, ON_BEAT_MARGIN)
        self.current = Exchange(time=now - self.origin, phrase=heard.events, answer=[],
                                latency_ms=0.0, bpm=beat.bpm, start=start - self.origin,
                                bpm_from=beat.source, left_out=len(heard.outside),
                                merged=merged_names(heard.merged),
                                under=under, gap=gap,
                                release=self.listener.last_activity - self.origin)
        respond = self.settings.respond
        self._answer = AnswerInProgress(
            self.current, count=respond or len(heard.events),
            room=None if respond else ANSWER_BEATS * ev.QUARTERS_PER_BEAT,
            velocity=heard.velocity, begin=start, quarter=60.0 / beat.bpm / ev.QUARTERS_PER_BEAT)
        self.responder.begin()
        self.output.play(self._answer.draw(self.responder, now), start, now)
        self.current.latency_ms = (time.perf_counter() - detected) * 1000.0
        del spent
        self.phrase_end.learn(silences, beat.period)
        if self.duet is not None:
            self.duet.phrase(heard.begin, beat.bpm)
        self.screen.answered(self.current)
        return self.current

    def _show(self, now: float) -> None:
        """Tell the screen about the answer's events that have begun by `now`."""
        answer = self._answer
        begun = answer.begun_by(now)
        if begun > answer.shown:
            answer.shown = begun
            self.screen.sounded(answer.exchange, begun)

    def _cut(self, t: float) -> None:
        played = min(self.current.begun(t - self.origin), len(self.current.answer))
        self.output.cut(t)
        self.responder.heard(played)
        self.listener.forget()  # anything heard since is forgotten with the rest
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
