"""`synth live`: call and response. The player plays a phrase; when no key has been held for
`gap` seconds the model answers with a continuation, conditioned on everything played and
answered so far (the LSTM state carries on through the session), and listens again.

The answer follows the player: the phrase's tempo and beat come from its onsets (synth.tempo)
unless --bpm fixes the tempo, the phrase is read as events on that beat's grid, and the answer
is played at that tempo from the player's next beat (the one after if the next is under
20 ms away, so that the answer is always ready in time).

Never imports TensorFlow: the model runs in NumPy (synth.generate). The answer is drawn and
scheduled, and the output's next audio block rendered (or any message due sent), within a few
milliseconds of the phrase end; `latency_ms` in the log measures exactly that span.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import math
import queue
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mido
import numpy as np

from synth import devices, files, tempo
from synth.effects import REVERB_TAIL_SECONDS, Effects, Stream
from synth.errors import SynthError
from synth import events as ev
from synth.generate import Melody, Sampling, continue_melody, restore
from synth.inputs import Event, Input, Take, is_press, is_release
from synth.midi import CHORD_SECONDS
from synth.modelfile import Model
from synth.notes import class_to_midi, in_range
from synth.piano import DEFAULT_VELOCITY, RATE, Voices
from synth.songs import check_bpm

BLOCK = 256  # frames per audio block: 5.8 ms at 44.1 kHz
WAV_LAG = 0.02  # a session WAV is rendered this far behind the clock, so every note lands
DEVICE_AHEAD = 4  # blocks queued for the sound card (23 ms)
ON_BEAT_MARGIN = 0.02  # an answer never starts on a beat closer than this to the phrase end
ANSWER = "answer"
PLAYER = "player"


@dataclass(frozen=True)
class LiveSettings:
    """How the model listens and answers."""

    gap: float = 0.8  # seconds with no key held that end a phrase
    respond: int | None = None  # events per answer; None = as many as the phrase had
    interrupt: bool = True  # a key pressed during an answer cuts it short
    bpm: float | None = None  # a fixed tempo; None = the tempo of each phrase
    sampling: Sampling = field(default_factory=Sampling)

    def check(self) -> "LiveSettings":
        if not (0.05 <= self.gap <= 10 and math.isfinite(self.gap)):
            raise SynthError(f"--gap {self.gap:g} is out of range: expected 0.05-10 seconds")
        if self.respond is not None and not 1 <= self.respond <= 256:
            raise SynthError(f"--respond {self.respond} is out of range: expected 1-256 events")
        if self.bpm is not None:
            check_bpm(self.bpm)
        self.sampling.check()
        return self


class Responder:
    """The model's side of the conversation: one running melody for the whole session."""

    def __init__(self, model: Model, sampling: Sampling = Sampling()):
        self.melody = Melody(model)
        self.sampling = sampling
        self.rng = np.random.default_rng(sampling.seed)
        self._trail: list[tuple] = []

    def answer(self, phrase: Sequence[ev.Event], count: int) -> list[ev.Event]:
        """Hear `phrase`, then draw `count` events that continue it."""
        self.melody.feed(phrase)
        self._trail = []
        return continue_melody(self.melody, count, self.sampling, self.rng, self._trail)

    def heard(self, played: int) -> None:
        """Only the first `played` events of the last answer sounded: forget the rest."""
        if self._trail:
            restore(self.melody, self._trail[min(played, len(self._trail) - 1)])


@dataclass
class Strike:
    """One note of an answer, times in seconds from the answer's start."""

    on: float
    off: float
    pitch: int
    velocity: int


def answer_notes(events: Sequence[ev.Event], bpm: float, velocity: int) -> list[Strike]:
    """Each pitch event strikes at its start and is held for its length."""
    quarter = 60.0 / bpm / ev.QUARTERS_PER_BEAT
    return [Strike(start * quarter, (start + e.quarters) * quarter, class_to_midi(e.cls), velocity)
            for e, start in zip(events, ev.starts(events)) if not e.is_rest]


# --- outputs ------------------------------------------------------------------------------


class WavSink:
    """Writes the session's sound to a WAV file as it goes; renamed into place at the end."""

    lag = WAV_LAG

    def __init__(self, path: Path):
        import soundfile

        self.wav = files.Growing(path, lambda tmp: soundfile.SoundFile(
            tmp, "w", RATE, 2, subtype="PCM_16", format="WAV"))

    def write(self, block: np.ndarray) -> None:
        self.wav.file.write(block)

    def backlog(self) -> int:
        return 0

    def close(self) -> list[Path]:
        return [self.wav.finish()]


class NullSink:
    """Renders and forgets (for benchmarks): the same work as a WAV without the file."""

    lag = WAV_LAG

    def write(self, block: np.ndarray) -> None:
        pass

    def backlog(self) -> int:
        return 0

    def close(self) -> list[Path]:
        return []


class DeviceSink:
    """The sound card, through pedalboard's AudioStream. Its write() blocks until the audio has
    played, so a thread feeds it from a short queue that the session keeps topped up."""

    lag = None  # rendered ahead of the clock, not behind it

    def __init__(self, name: str, stream_factory=None):
        if stream_factory is None:
            from pedalboard.io import AudioStream

            def stream_factory():
                return AudioStream(output_device_name=name, sample_rate=RATE, buffer_size=BLOCK)
        try:
            with devices.quiet_stderr():
                self._stream = stream_factory()
        except Exception as exc:
            raise SynthError(f"audio output {name!r} cannot be opened: "
                             f"{str(exc).strip() or type(exc).__name__}") from None
        self.name = name
        self.error = ""
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._thread = threading.Thread(target=self._play, daemon=True, name="audio")
        self._thread.start()

    def _play(self) -> None:
        try:
            with self._stream:
                while (block := self._queue.get()) is not None:
                    self._stream.write(np.ascontiguousarray(block.T), RATE)
        except Exception as exc:  # the device went away: tell the session on its next write
            self.error = str(exc).strip() or type(exc).__name__

    def write(self, block: np.ndarray) -> None:
        if self.error:
            raise SynthError(f"audio output {self.name!r} stopped: {self.error}")
        self._queue.put(block)

    def backlog(self) -> int:
        return self._queue.qsize()

    def close(self) -> list[Path]:
        self._queue.put(None)
        self._thread.join(timeout=10.0)
        return []


class SoundOutput:
    """The built-in piano and effects, rendered block by block into a sink (a WAV file, the
    sound card, or nowhere). The player's notes sound too, so the session WAV holds both."""

    def __init__(self, sink, effects: Effects = Effects(), origin: float = 0.0):
        self.sink = sink
        self.piano = Voices()
        self.effects = effects
        self.fx = Stream(RATE, effects)
        self.origin = origin  # clock time of frame 0

    def frame(self, t: float) -> int:
        return max(int(round((t - self.origin) * RATE)), self.piano.position)

    def player_down(self, pitch: int, velocity: int, t: float) -> None:
        if in_range(pitch):  # the piano has samples for C3-B4 only
            self.piano.down(pitch, velocity, self.frame(t), PLAYER)

    def player_up(self, pitch: int, t: float) -> None:
        self.piano.up(pitch, self.frame(t), PLAYER)

    def play(self, notes: Sequence[Strike], start: float, now: float) -> None:
        """Schedule an answer starting at clock time `start` (now or later); returns once the
        block due now is rendered, so the answer sounds on time from there on."""
        first = self.frame(start)
        for note in notes:
            self.piano.down(note.pitch, note.velocity, first + round(note.on * RATE), ANSWER)
            self.piano.up(note.pitch, first + round(note.off * RATE), ANSWER)
        self.render_to(self.frame(now) + BLOCK)

    def cut(self, t: float) -> None:
        self.piano.cut(ANSWER, self.frame(t))

    def render_to(self, frame: int) -> None:
        while self.piano.position < frame:
            self.sink.write(self.fx.process(self.piano.render(BLOCK)))

    def pump(self, now: float) -> None:
        if self.sink.lag is None:  # the sound card: keep a few blocks queued ahead
            while self.sink.backlog() < DEVICE_AHEAD:
                self.render_to(self.piano.position + BLOCK)
        else:
            self.render_to(int(round((now - self.sink.lag - self.origin) * RATE)))

    def next_due(self) -> float:
        return math.inf

    def close(self) -> list[Path]:
        """Let everything ring out (reverb tail included), then close the sink."""
        self.piano.cut(PLAYER, self.piano.position)
        tail = int(REVERB_TAIL_SECONDS * self.effects.room_size * RATE) if self.effects.enabled \
            else 0
        while self.piano.busy():
            self.render_to(self.piano.position + BLOCK)
        self.render_to(self.piano.position + tail)
        return self.sink.close()


class MidiOutput:
    """Answers sent to a MIDI output port (a synth, a DAW) at their times; the player's own
    notes are not echoed, the keyboard or the DAW sounds them already."""

    def __init__(self, port, channel: int = 0):
        self.port = port
        self.channel = channel
        self._schedule: list[tuple[float, int, mido.Message]] = []
        self._order = itertools.count()
        self._sounding: set[int] = set()

    def player_down(self, pitch: int, velocity: int, t: float) -> None:
        pass

    def player_up(self, pitch: int, t: float) -> None:
        pass

    def play(self, notes: Sequence[Strike], start: float, now: float) -> None:
        """Schedule an answer starting at clock time `start`; returns once the messages due
        `now` are sent."""
        for note in notes:
            for when, msg in ((note.on, mido.Message("note_on", note=note.pitch,
                                                     velocity=note.velocity,
                                                     channel=self.channel)),
                              (note.off - 1e-6, mido.Message("note_off", note=note.pitch,
                                                             channel=self.channel))):
                heapq.heappush(self._schedule, (start + when, next(self._order), msg))
        self.pump(now)

    def cut(self, t: float) -> None:
        self._schedule = []
        for pitch in sorted(self._sounding):
            self.port.send(mido.Message("note_off", note=pitch, channel=self.channel))
        self._sounding.clear()

    def pump(self, now: float) -> None:
        while self._schedule and self._schedule[0][0] <= now:
            _, _, msg = heapq.heappop(self._schedule)
            self.port.send(msg)
            if msg.type == "note_on":
                self._sounding.add(msg.note)
            else:
                self._sounding.discard(msg.note)

    def next_due(self) -> float:
        return self._schedule[0][0] if self._schedule else math.inf

    def close(self) -> list[Path]:
        self.pump(math.inf)  # let the last answer finish its notes
        self.cut(math.inf)
        self.port.close()
        return []


AS_WAV = "--output wav:FILE (the session as a WAV)"


def default_output() -> str:
    """The sound card where there is one, else a new WAV in out/."""
    if devices.audio_output_names():
        return "audio"
    return f"wav:{files.unique_path(Path('out'), 'live', '.wav')}"


def open_output(spec: str, effects: Effects = Effects(), origin: float = 0.0,
                overwrite: bool = False):
    """The --output of live: `audio` or `audio:DEVICE` (the sound card), `midi:PORT`, or
    `wav:FILE` (the whole session). Raises SynthError naming what exists."""
    kind, _, rest = spec.partition(":")
    if kind == "wav" and rest:
        if Path(rest).suffix.lower() != ".wav":
            raise SynthError(f"--output {spec}: the session is saved as WAV: expected a .wav file")
        files.refuse_existing(Path(rest), overwrite)
        return SoundOutput(WavSink(Path(rest)), effects, origin)
    if kind == "midi" and rest:
        problems: list[str] = []
        names = devices.midi_output_names(problems)
        name = devices.choose(rest, names, "MIDI output", f"{AS_WAV} or --output audio",
                              problems)
        try:
            with devices.quiet_stderr():
                return MidiOutput(mido.open_output(name))
        except Exception as exc:
            raise SynthError(f"MIDI output {name!r} cannot be opened: "
                             f"{str(exc).strip() or type(exc).__name__}") from None
    if kind == "audio":
        problems = []
        names = devices.audio_output_names(problems)
        name = devices.choose(rest or None, names, "audio output",
                              f"{AS_WAV} or --output midi:PORT", problems)
        return SoundOutput(DeviceSink(name), effects, origin)
    raise SynthError(f"--output {spec!r} is not understood: expected audio, audio:DEVICE, "
                     "midi:PORT or wav:FILE")


# --- the session --------------------------------------------------------------------------


@dataclass
class Exchange:
    """One phrase and the answer to it; a line of the --log file."""

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

    @functools.cached_property
    def seconds(self) -> float:
        """How long the answer lasts (to the end of its last event); asked every block."""
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
        return data


class AnswerLog:
    """--log FILE.jsonl: one JSON object per answer, flushed as it comes; the file is moved
    into place when the session ends (a crash leaves the lines in a hidden file beside it)."""

    def __init__(self, path: Path):
        self.log = files.Growing(path, lambda tmp: tmp.open("w", encoding="utf-8"))

    def write(self, exchange: Exchange) -> None:
        self.log.file.write(json.dumps(exchange.record()) + "\n")
        self.log.file.flush()

    def close(self) -> list[Path]:
        return [self.log.finish()]

    def abandon(self) -> None:
        self.log.abandon()


class Screen:
    """What the session tells the player; the CLI draws it, tests and benchmarks ignore it."""

    def played(self, pitch: int) -> None: ...

    def answered(self, exchange: Exchange) -> None: ...

    def finished(self, exchange: Exchange) -> None: ...


class Session:
    """Listens to an input and answers phrases until the input ends or Ctrl-C."""

    def __init__(self, model: Model, output, settings: LiveSettings = LiveSettings(),
                 log: AnswerLog | None = None, screen: Screen | None = None,
                 clock=time.monotonic):
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

    def _answer_end(self) -> float:
        """When the answer in progress (or waiting for its first beat) stops sounding."""
        if self.current is None:
            return -math.inf
        return self.origin + self.current.start + self.current.seconds

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
        if self.current is not None:
            wake = min(wake, self._answer_end())
        if self.phrase and not self.held:
            wake = min(wake, self.last_activity + self.settings.gap)
        return wake

    def handle(self, event: Event) -> None:
        """Take in one event from the input."""
        msg = event.message
        if event.is_stop:  # keys still held are let go, so the last phrase can end
            self.ending = event.reason or "the input ended"
            for pitch in sorted(self.held):
                self.handle(Event(event.time, mido.Message("note_off", note=pitch)))
            return
        if is_press(msg):
            if self.settings.interrupt and self.answering(event.time):
                self._cut(event.time)
            self.held.add(msg.note)
            self.phrase.append((event.time, msg))
            self.output.player_down(msg.note, msg.velocity, event.time)
            self.screen.played(msg.note)
        elif is_release(msg):
            self.held.discard(msg.note)
            if self.phrase:
                self.phrase.append((event.time, msg))
            self.output.player_up(msg.note, event.time)
        else:
            return
        self.last_activity = event.time

    def tick(self, now: float) -> None:
        """Finish the answer that has played out, answer a phrase that has ended, make sound."""
        if self.current is not None and now >= self._answer_end():
            self._finish(len(self.current.answer))
        if (self.phrase and not self.held and now - self.last_activity >= self.settings.gap
                and self.current is None):
            self.respond(now)
        self.output.pump(now)

    def beat(self) -> tempo.Beat:
        """The beat of the phrase so far: its tempo (or the fixed --bpm) and phase."""
        onsets = [t for t, m in self.phrase if is_press(m)]
        if self.settings.bpm is not None:
            return tempo.fixed(onsets, self.settings.bpm, chord=CHORD_SECONDS)
        return tempo.estimate(onsets, previous=self.last_bpm, chord=CHORD_SECONDS)

    def respond(self, now: float) -> Exchange | None:
        """The phrase has ended: answer it on the player's beat. Latency runs from here to the
        answer scheduled and the output's next block ready."""
        detected = time.perf_counter()
        beat = self.beat()
        begin = beat.before(self.phrase[0][0])  # the phrase's grid starts on a beat
        take = Take(bpm=beat.bpm, messages=[(t - begin, m) for t, m in self.phrase],
                    seconds=self.last_activity - begin)
        velocities = [m.velocity for _, m in self.phrase if is_press(m)]
        self.phrase = []
        phrase, outside = take.events()
        if not phrase:
            return None  # every note was outside C3-B4: nothing to answer
        self.last_bpm = beat.bpm
        answer = self.responder.answer(phrase, self.settings.respond or len(phrase))
        velocity = int(statistics.median(velocities)) if velocities else DEFAULT_VELOCITY
        start = beat.next_beat(now, ON_BEAT_MARGIN)
        self.output.play(answer_notes(answer, beat.bpm, velocity), start, now)
        latency = (time.perf_counter() - detected) * 1000.0
        self.current = Exchange(time=now - self.origin, phrase=phrase, answer=answer,
                                latency_ms=latency, bpm=beat.bpm, start=start - self.origin,
                                bpm_from=beat.source, played=len(answer),
                                left_out=len(outside))
        self.screen.answered(self.current)
        return self.current

    def _cut(self, t: float) -> None:
        played = self.current.begun(t - self.origin)
        self.output.cut(t)
        self.responder.heard(played)
        self._finish(played, interrupted=True)

    def _finish(self, played: int, interrupted: bool = False) -> None:
        exchange, self.current = self.current, None
        exchange.played = played
        exchange.interrupted = interrupted
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
        return written
