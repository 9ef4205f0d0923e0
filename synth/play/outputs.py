"""Where `synth live` sounds: the built-in piano and effects rendered block by block into a
sink (a session WAV, the sound card, or nowhere), or a MIDI output port. Each output takes the
player's keys and the answers' notes at clock times, and is pumped by the session's loop.
"""

from __future__ import annotations

import heapq
import itertools
import math
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from synth.play import devices, journal
from synth import files
from synth.sound.render import live_gain
from synth.sound.effects import REVERB_TAIL_SECONDS, Effects, Stream
from synth.errors import SynthError
from synth.music.notes import in_range
from synth.sound.piano import RATE, Voices

BLOCK = 256  # frames per audio block: 5.8 ms at 44.1 kHz
WAV_LAG = 0.02  # a session WAV is rendered this far behind the clock, so every note lands
DEVICE_AHEAD = 4  # blocks queued for the sound card (23 ms)
ANSWER = "answer"
PLAYER = "player"


@dataclass
class Strike:
    """One note of an answer, times in seconds from the answer's start."""

    on: float
    off: float
    pitch: int
    velocity: int



class WavSink:
    """Writes the session's sound to a WAV file under its name as it goes, kept playable
    should the session die (synth.play.journal)."""

    lag = WAV_LAG

    def __init__(self, path: Path):
        self.wav = journal.SessionWav(path, RATE, 2)

    def write(self, block: np.ndarray) -> None:
        self.wav.write(block)

    def backlog(self) -> int:
        return 0

    def close(self) -> list[Path]:
        return [self.wav.close()]


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
        self.fx = Stream(RATE, effects, live_gain(effects))
        # clock time of frame 0, moved by the chain's delay so that each note comes out on time
        self.origin = origin + self.fx.delay / RATE
        self._answer_frame = 0  # where the answer in progress starts

    def frame(self, t: float) -> int:
        return max(int(round((t - self.origin) * RATE)), self.piano.position)

    def player_down(self, pitch: int, velocity: int, t: float) -> None:
        if in_range(pitch):  # the piano has samples for C3-B4 only
            self.piano.down(pitch, velocity, self.frame(t), PLAYER)

    def player_up(self, pitch: int, t: float) -> None:
        self.piano.up(pitch, self.frame(t), PLAYER)

    def play(self, notes: Sequence[Strike], start: float, now: float) -> None:
        """Begin an answer at clock time `start` (now or later) with its first notes; returns
        once the block due now is rendered, so the answer sounds on time from there on."""
        self._answer_frame = self.frame(start)
        self.extend(notes)
        self.render_to(self.frame(now) + BLOCK)

    def extend(self, notes: Sequence[Strike]) -> None:
        """More notes of the answer begun by `play` (times from its start)."""
        first = self._answer_frame
        for note in notes:
            self.piano.down(note.pitch, note.velocity, first + round(note.on * RATE), ANSWER)
            self.piano.up(note.pitch, first + round(note.off * RATE), ANSWER)

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
        self._start = 0.0  # clock time of the answer in progress

    def player_down(self, pitch: int, velocity: int, t: float) -> None:
        pass

    def player_up(self, pitch: int, t: float) -> None:
        pass

    def play(self, notes: Sequence[Strike], start: float, now: float) -> None:
        """Begin an answer at clock time `start` with its first notes; returns once the
        messages due `now` are sent."""
        self._start = start
        self.extend(notes)
        self.pump(now)

    def extend(self, notes: Sequence[Strike]) -> None:
        """More notes of the answer begun by `play` (times from its start)."""
        for note in notes:
            for when, msg in ((note.on, mido.Message("note_on", note=note.pitch,
                                                     velocity=note.velocity,
                                                     channel=self.channel)),
                              (note.off - 1e-6, mido.Message("note_off", note=note.pitch,
                                                             channel=self.channel))):
                heapq.heappush(self._schedule, (self._start + when, next(self._order), msg))

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
LIVE_WAV = Path("out") / "live.wav"  # a session saved with no WAV named: out/live.wav, numbered


def default_output() -> str:
    """The sound card where there is one, else a new WAV in out/."""
    if devices.audio_output_names():
        return "audio"
    return f"wav:{files.unique_path(LIVE_WAV.parent, LIVE_WAV.stem, LIVE_WAV.suffix)}"


def session_wav(spec: str | None) -> Path | None:
    """The WAV an --output spec saves the session to (wav:FILE), else None."""
    kind, _, rest = (spec or "").partition(":")
    return Path(rest) if kind == "wav" and rest else None


def session_folders(spec: str | None, log: Path | None = None) -> list[Path]:
    """The folders a session with this --output and --log writes into: where what older
    sessions left hidden is recovered first, so that the new session's names come after it."""
    wav = session_wav(spec) or LIVE_WAV
    return [wav.parent] + ([log.parent] if log is not None else [])


def recover_sessions(folders: Sequence[Path]) -> list[journal.Recovered]:
    """Move what killed sessions left hidden in `folders` (each looked in once) into place."""
    return [left for folder in dict.fromkeys(Path(f) for f in folders)
            for left in journal.recover_leftovers(folder)]


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
